"""The languages a store writes its content in, as the console's pages show them side by side.

The main language (Tenant.main_language, the first one the store lists) is the one of the plain fields
(a knowledge entry's question and answer, a canned reply's text, the store's texts); every other listed
language has its version in the row's `translations`. A store that lists none writes in its main one only.
"""
from django.utils.translation import get_language_info

from chatbot.models import Tenant


def store_languages(tenant: Tenant) -> list[str]:
    """The store's languages, main first, each once: the pages show one column per language."""
    return list(dict.fromkeys([tenant.main_language, *tenant.listed_languages]))


def other_languages(tenant: Tenant) -> list[str]:
    """The store's languages but its main one: those written in `translations`."""
    return store_languages(tenant)[1:]


def versions_merged(stored: dict | None, written: dict) -> dict:
    """`stored` versions (language or text name -> version) with `written` applied: a version sets one, None
    removes it, a key left out keeps what was stored. A copy: the row changes only once it validates."""
    merged = dict(stored or {})
    for key, version in written.items():
        if version is None:
            merged.pop(key, None)
        else:
            merged[key] = version
    return merged


def language_name(code: str) -> str:
    """A language's own name ("Español"), so a manager finds hers at a glance; the code for an unknown one."""
    try:
        name = get_language_info(code)["name_local"]
    except KeyError:
        return code.upper()
    return name[:1].upper() + name[1:]


def language_columns(tenant: Tenant) -> list[dict]:
    """One {"code", "name", "main"} per language of the store, main first."""
    return [{"code": code, "name": language_name(code), "main": n == 0}
            for n, code in enumerate(store_languages(tenant))]

"""Writes of a store's canned replies (the answers agents insert by typing /shortcut).

A reply's `text` is in the store's main language, its `translations` in the other languages the store lists
(the console inserts the version in the conversation's language). Only the store's managers may write them;
a reply of a store the user is not in is NotFound, exactly like a missing one (chatbot.conversations.access).
"""
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from chatbot.console.languages import language_name, other_languages, store_languages, versions_merged
from chatbot.conversations import access
from chatbot.errors import InvalidField, NotFound
from chatbot.models import CannedReply, Tenant, language_code

SHORTCUT_MAX_LENGTH = CannedReply._meta.get_field("shortcut").max_length


class CannedReplyInvalid(InvalidField):
    """A refused canned reply; `field` names the input at fault, for the form: shortcut, text, text_<language>
    for another language's version, translations for the whole (codes: shortcut_required, shortcut_too_long,
    invalid_shortcut, text_required, text_too_long, duplicate_shortcut, invalid_text, language_not_listed,
    invalid_translations)."""

    code = "invalid_canned_reply"


def _clean_shortcut(shortcut: object) -> str:
    if not isinstance(shortcut, str):
        raise CannedReplyInvalid("Give a shortcut.", "shortcut_required", "shortcut")
    shortcut = shortcut.strip().lstrip("/").strip().lower()
    if not shortcut:
        raise CannedReplyInvalid("Give a shortcut.", "shortcut_required", "shortcut")
    if len(shortcut) > SHORTCUT_MAX_LENGTH:
        raise CannedReplyInvalid(f"A shortcut has at most {SHORTCUT_MAX_LENGTH} characters.", "shortcut_too_long",
                                 "shortcut")
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in shortcut):
        raise CannedReplyInvalid("A shortcut may hold only letters, digits, - and _ (e.g. refund-policy).",
                                 "invalid_shortcut", "shortcut")
    return shortcut


def _clean_text(text: object, field: str = "text", required: bool = True) -> str:
    """The text stripped, at most what a composer sends (a version too: the agent sends what is inserted)."""
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        if required:
            raise CannedReplyInvalid("Write the reply's text.", "text_required", field)
        return ""
    if "\x00" in text:
        raise CannedReplyInvalid("A reply must not contain NUL characters.", "invalid_text", field)
    limit = settings.WIDGET_MAX_TEXT_LENGTH
    if len(text) > limit:
        raise CannedReplyInvalid(f"A reply has at most {limit} characters (this one has {len(text)}).",
                                 "text_too_long", field)
    return text


def _clean_translations(tenant: Tenant, translations: object) -> dict[str, str | None]:
    """The versions to write, language -> text, or None to remove one (an empty text)."""
    if translations is None:
        return {}
    if not isinstance(translations, dict):
        raise CannedReplyInvalid('Give the versions per language, e.g. {"es": "…"}.', "invalid_translations",
                                 "translations")
    others, found = other_languages(tenant), {}
    for language, text in translations.items():
        if text is not None and not isinstance(text, str):
            raise CannedReplyInvalid(f"The {language!r} version must be text.", "invalid_translations",
                                     "translations")
        text = _clean_text(text, f"text_{language}", required=False)
        if language in others:
            found[language] = text or None
        elif text:  # an empty version of a language the store does not list: nothing to write or remove
            name = language_name(language) if language_code(language) == language else repr(language)
            if language == tenant.main_language:
                detail = f"{name} is {tenant.name}'s main language: write it as the reply's text."
            else:
                detail = (f"{name} is not one of the languages {tenant.name} lists "
                          f"({', '.join(store_languages(tenant))}); add it to the store's languages first.")
            raise CannedReplyInvalid(detail, "language_not_listed", f"text_{language}")
    return found


def _duplicate(shortcut: str) -> CannedReplyInvalid:
    return CannedReplyInvalid(f"The shortcut /{shortcut} is taken already in this store; choose another.",
                              "duplicate_shortcut", "shortcut")


def canned_reply_of(user: AbstractBaseUser, reply_id: object, *, manager: bool = False) -> CannedReply:
    """A canned reply of a store the user belongs to (manages, with `manager`), else NotFound."""
    if not isinstance(reply_id, int) or isinstance(reply_id, bool):
        raise NotFound("No such canned reply.")
    reply = CannedReply.objects.select_related("tenant").filter(pk=reply_id,
                                                                 tenant_id__in=access.tenant_ids_of(user)).first()
    if reply is None:
        raise NotFound("No such canned reply.")
    access.access_tenant(user, reply.tenant_id, manager=manager)
    return reply


def canned_reply_save(user: AbstractBaseUser, tenant: Tenant | int | str, shortcut: object, text: object,
                      reply_id: int | None = None, translations: object = None) -> CannedReply:
    """Create (no `reply_id`) or edit a canned reply of a store the user manages; shortcuts are unique per store.
    `translations` maps a language the store lists to its version: a text sets it, "" removes it, a language
    left out keeps its version."""
    tenant = access.access_tenant(user, tenant.pk if isinstance(tenant, Tenant) else tenant, manager=True)
    shortcut, text = _clean_shortcut(shortcut), _clean_text(text)
    versions = _clean_translations(tenant, translations)
    with transaction.atomic():
        if reply_id is None:
            reply = CannedReply(tenant=tenant)
        else:
            reply = canned_reply_of(user, reply_id, manager=True)
            if reply.tenant_id != tenant.id:
                raise NotFound("No such canned reply.")
            reply = CannedReply.objects.select_for_update().get(pk=reply.pk)  # versions merged, not lost
        if CannedReply.objects.filter(tenant=tenant, shortcut=shortcut).exclude(pk=reply.pk).exists():
            raise _duplicate(shortcut)
        merged = versions_merged(reply.translations, versions)
        reply.shortcut, reply.text, reply.translations = shortcut, text, merged
        try:
            with transaction.atomic():
                reply.save()
        except IntegrityError:  # another manager saved the same shortcut meanwhile
            raise _duplicate(shortcut) from None
    return reply


def canned_reply_delete(user: AbstractBaseUser, reply_id: object) -> CannedReply:
    """Delete a canned reply of a store the user manages; returns it as it was."""
    with transaction.atomic():
        reply = canned_reply_of(user, reply_id, manager=True)
        reply.delete()
    return reply

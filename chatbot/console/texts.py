"""A store's own texts that the bot sends (greeting, fallback, hand-off notices...), in each language it lists,
and what the bot does when the store wrote no answer in a visitor's language (Tenant.untranslated).

The main language's texts are the Tenant's fields; the others are in Tenant.translations (a text not written
in a language is sent as in the main one). `untranslated_note` has no field: in the main language it is never
sent, and a language without its own wording gets the platform's (chatbot.content.untranslated_note).
Only the store's managers may change them.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from chatbot.console.languages import language_name, other_languages, store_languages, versions_merged
from chatbot.conversations import access
from chatbot.errors import InvalidField
from chatbot.models import TRANSLATED_TEXTS, Tenant, language_code, translations_validate

# The texts with a field of their own, written in the main language.
MAIN_TEXTS = tuple(name for name in TRANSLATED_TEXTS if name != "untranslated_note")
# The longest text in another language, as chatbot.models.translations_validate allows.
TRANSLATION_MAX_LENGTH = 1000


class StoreTextsInvalid(InvalidField):
    """Refused texts; `field` names the input at fault, for the form: the text's name (greeting...) in the
    main language, <name>_<language> in another, untranslated, or translations for the whole (codes:
    text_required, text_too_long, invalid_text, unknown_text, language_not_listed, invalid_untranslated,
    invalid_translations)."""

    code = "invalid_store_texts"


def main_max_length(name: str) -> int:
    return Tenant._meta.get_field(name).max_length


def _text(value: object, field: str, what: str, limit: int) -> str:
    """`value` stripped ("" for nothing), refused when it is not text, holds NUL or is longer than `limit`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise StoreTextsInvalid(f"The {what} must be text.", "invalid_text", field)
    value = value.strip()
    if "\x00" in value:
        raise StoreTextsInvalid(f"The {what} must not contain NUL characters.", "invalid_text", field)
    if len(value) > limit:
        raise StoreTextsInvalid(f"The {what} has at most {limit} characters (this one has {len(value)}).",
                                "text_too_long", field)
    return value


def _main(texts: object) -> dict[str, str]:
    if texts is None:
        return {}
    if not isinstance(texts, dict):
        raise StoreTextsInvalid("Give the main language's texts by name, e.g. {\"greeting\": \"Hi!\"}.",
                                "invalid_translations", "translations")
    found = {}
    for name, value in texts.items():
        if name not in MAIN_TEXTS:
            raise StoreTextsInvalid(f"{name!r} is not a text of the main language; use {', '.join(MAIN_TEXTS)}.",
                                    "unknown_text", "translations")
        found[name] = _text(value, name, name.replace("_", " "), main_max_length(name))
        if not found[name]:
            raise StoreTextsInvalid("Write this text: the bot sends it.", "text_required", name)
    return found


def _versions(tenant: Tenant, translations: object) -> dict[str, dict[str, str | None]]:
    """language -> name -> text to write, or None to remove (an empty text: the main one is sent instead)."""
    if translations is None:
        return {}
    if not isinstance(translations, dict):
        raise StoreTextsInvalid('Give the texts per language, e.g. {"es": {"greeting": "¡Hola!"}}.',
                                "invalid_translations", "translations")
    others, found = other_languages(tenant), {}
    for language, texts in translations.items():
        if not isinstance(texts, dict):
            raise StoreTextsInvalid(f"The texts of {language!r} must be an object of text name to text.",
                                    "invalid_translations", "translations")
        lang = language_name(language) if language_code(language) == language else repr(language)
        for name, value in texts.items():
            if name not in TRANSLATED_TEXTS:
                raise StoreTextsInvalid(f"{name!r} is not a text the bot sends; use {', '.join(TRANSLATED_TEXTS)}.",
                                        "unknown_text", "translations")
            field = f"{name}_{language}"
            text = _text(value, field, f"{lang} {name.replace('_', ' ')}", TRANSLATION_MAX_LENGTH)
            if language in others:
                found.setdefault(language, {})[name] = text or None
            elif text:  # empty in a language the store does not list: nothing to write or remove
                if language == tenant.main_language:
                    detail = f"{lang} is the store's main language: its texts are the main ones."
                else:
                    detail = (f"{lang} is not one of the languages {tenant.name} lists "
                              f"({', '.join(store_languages(tenant))}); add it to the store's languages first.")
                raise StoreTextsInvalid(detail, "language_not_listed", field)
    return found


def store_texts_save(user: AbstractBaseUser, tenant: Tenant | int | str, main: object = None,
                     translations: object = None, untranslated: object = None) -> Tenant:
    """Change a store's texts: `main` name -> text of its main language (each required), `translations`
    language -> name -> text of its other listed ones ("" removes one: the main text is sent instead; a name
    or language left out is kept), `untranslated` a Tenant.Untranslated value (None keeps it). Nothing is
    stored unless all of it is valid."""
    tenant = access.access_tenant(user, tenant.pk if isinstance(tenant, Tenant) else tenant, manager=True)
    main, versions = _main(main), _versions(tenant, translations)
    if untranslated is not None and untranslated not in Tenant.Untranslated.values:
        raise StoreTextsInvalid("Choose what the bot does with a question it has no answer to in the visitor's "
                                "language.", "invalid_untranslated", "untranslated")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)  # another manager's languages kept
        merged = {language: dict(texts) for language, texts in (tenant.translations or {}).items()
                  if isinstance(texts, dict)}
        for language, texts in versions.items():
            merged[language] = versions_merged(merged.get(language), texts)
            if not merged[language]:
                del merged[language]
        try:
            translations_validate(merged)
        except ValidationError as exc:
            raise StoreTextsInvalid(exc.messages[0], "invalid_translations", "translations") from None
        for name, text in main.items():
            setattr(tenant, name, text)
        tenant.translations = merged
        if untranslated is not None:
            tenant.untranslated = untranslated
        tenant.save(update_fields=[*main, "translations", "untranslated"])
    return tenant

"""A store's knowledge base in the console: the entries the bot grounds its answers in, each with its question
and answer in the store's main language and, in `translations`, in the other languages the store lists.

Only the store's managers may read or write them here; an entry of a store the user is not in is NotFound,
exactly like a missing one (chatbot.conversations.access). The workers notice every change by the entries'
change stamp (chatbot.conversations.selectors.knowledge_version), so nothing is sent anywhere.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from chatbot.console.languages import language_name, other_languages, store_languages, versions_merged
from chatbot.conversations import access
from chatbot.errors import InvalidField, NotFound, ServiceError
from chatbot.models import CONTENT_MAX_LENGTH, KnowledgeEntry, Tenant, entry_translations_validate, language_code

CATEGORY_MAX_LENGTH = KnowledgeEntry._meta.get_field("category").max_length
QUERY_MAX_LENGTH = 200
# The `missing` filter's value for "missing any of the store's languages" (else a language code).
MISSING_ANY = "any"


class KnowledgeEntryInvalid(InvalidField):
    """A refused entry; `field` names the input at fault, for the form: question, answer, category,
    question_<language> or answer_<language> for another language's version, translations for the whole
    (codes: question_required, answer_required, question_too_long, answer_too_long, invalid_text,
    category_too_long, version_incomplete, language_not_listed, invalid_translations)."""

    code = "invalid_knowledge_entry"


def _text(value: object, field: str, what: str, *, required: bool = False) -> str:
    """`value` stripped; "" for nothing (refused when `required`); `what` names it for people."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise KnowledgeEntryInvalid(f"The {what} must be text.", "invalid_text", field)
    value = value.strip()
    name = field.split("_")[0]
    if not value and required:
        raise KnowledgeEntryInvalid(f"Write the {what}.", f"{name}_required", field)
    if "\x00" in value:
        raise KnowledgeEntryInvalid(f"The {what} must not contain NUL characters.", "invalid_text", field)
    if len(value) > CONTENT_MAX_LENGTH:
        raise KnowledgeEntryInvalid(f"The {what} has at most {CONTENT_MAX_LENGTH} characters (this one has "
                                    f"{len(value)}).", f"{name}_too_long", field)
    return value


def _category(value: object) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if "\x00" in value:
        raise KnowledgeEntryInvalid("The category must not contain NUL characters.", "invalid_text", "category")
    if len(value) > CATEGORY_MAX_LENGTH:
        raise KnowledgeEntryInvalid(f"A category has at most {CATEGORY_MAX_LENGTH} characters.", "category_too_long",
                                    "category")
    return value


def _versions(tenant: Tenant, translations: object) -> dict[str, dict | None]:
    """The versions to write, language -> {"question", "answer"}, or None to remove one (an empty pair)."""
    if translations is None:
        return {}
    if not isinstance(translations, dict):
        raise KnowledgeEntryInvalid('Give the versions per language, e.g. {"es": {"question": "…", "answer": "…"}}.',
                                    "invalid_translations", "translations")
    others, found = other_languages(tenant), {}
    for language, version in translations.items():
        if version is None:
            version = {}
        if not isinstance(version, dict):
            raise KnowledgeEntryInvalid(f"The {language!r} version must be a question and an answer.",
                                        "invalid_translations", "translations")
        name = language_name(language) if language_code(language) == language else repr(language)
        question = _text(version.get("question"), f"question_{language}", f"{name} question")
        answer = _text(version.get("answer"), f"answer_{language}", f"{name} answer")
        if language not in others:
            if not question and not answer:
                continue  # nothing written, nothing to remove
            if language == tenant.main_language:
                detail = f"{name} is the store's main language: write it in the main question and answer."
            else:
                detail = (f"{name} is not one of the languages {tenant.name} lists "
                          f"({', '.join(store_languages(tenant))}); add it to the store's languages first.")
            raise KnowledgeEntryInvalid(detail, "language_not_listed", "translations")
        if bool(question) != bool(answer):
            missing, written = ("question", "answer") if answer else ("answer", "question")
            raise KnowledgeEntryInvalid(f"Write the {name} {missing} too, or clear the {name} {written} to remove "
                                        "this version.", "version_incomplete", f"{missing}_{language}")
        found[language] = {"question": question, "answer": answer} if question else None
    return found


def knowledge_entry_of(user: AbstractBaseUser, entry_id: object) -> KnowledgeEntry:
    """An entry of a store the user manages, else NotFound (another store's) or PermissionDenied (an agent's)."""
    if not isinstance(entry_id, int) or isinstance(entry_id, bool):
        raise NotFound("No such knowledge entry.")
    entry = KnowledgeEntry.objects.select_related("tenant").filter(
        pk=entry_id, tenant_id__in=access.tenant_ids_of(user)).first()
    if entry is None:
        raise NotFound("No such knowledge entry.")
    access.access_tenant(user, entry.tenant_id, manager=True)
    return entry


def knowledge_entry_save(user: AbstractBaseUser, tenant: Tenant | int | str, question: object, answer: object, *,
                         translations: object = None, category: object = "",
                         entry_id: int | None = None) -> KnowledgeEntry:
    """Create (no `entry_id`) or edit an entry of a store the user manages. `translations` maps a language the
    store lists to {"question", "answer"}: both written sets that version, both empty removes it, a language
    left out keeps its version. Nothing is stored unless all of it is valid."""
    tenant = access.access_tenant(user, tenant.pk if isinstance(tenant, Tenant) else tenant, manager=True)
    question = _text(question, "question", "question", required=True)
    answer = _text(answer, "answer", "answer", required=True)
    category = _category(category)
    versions = _versions(tenant, translations)
    with transaction.atomic():
        if entry_id is None:
            entry = KnowledgeEntry(tenant=tenant)
        else:
            found = knowledge_entry_of(user, entry_id)
            if found.tenant_id != tenant.id:
                raise NotFound("No such knowledge entry.")
            # Locked: two managers writing two languages at once both keep theirs.
            entry = KnowledgeEntry.objects.select_for_update().get(pk=found.pk)
        merged = versions_merged(entry.translations, versions)
        try:
            entry_translations_validate(merged)
        except ValidationError as exc:
            raise KnowledgeEntryInvalid(exc.messages[0], "invalid_translations", "translations") from None
        entry.question, entry.answer, entry.category, entry.translations = question, answer, category, merged
        entry.save()
    return entry


def knowledge_entry_activate(user: AbstractBaseUser, entry_id: object, active: bool) -> KnowledgeEntry:
    """Let the bot use an entry again, or stop it without losing the entry (an inactive one grounds nothing)."""
    with transaction.atomic():
        entry = knowledge_entry_of(user, entry_id)
        if entry.is_active != active:
            entry.is_active = active
            entry.save(update_fields=["is_active", "updated_at"])
    return entry


def knowledge_entry_delete(user: AbstractBaseUser, entry_id: object) -> KnowledgeEntry:
    """Delete an entry of a store the user manages; returns it as it was."""
    with transaction.atomic():
        entry = knowledge_entry_of(user, entry_id)
        entry.delete()
    return entry


# --- the page's reads ---------------------------------------------------------------------------------------


def knowledge_entries(tenant: Tenant, query: str = "", missing: str = "") -> QuerySet[KnowledgeEntry]:
    """The store's entries, by category then age: `query` matches any version's question or answer or the
    category; `missing` "any" keeps those lacking a version in one of the store's other languages, a
    language code those lacking that one (another value is refused: a link must not quietly show all)."""
    entries = KnowledgeEntry.objects.filter(tenant=tenant).order_by("category", "id")
    others = other_languages(tenant)
    query = (query or "").replace("\x00", "").strip()[:QUERY_MAX_LENGTH]  # PostgreSQL refuses NUL in a query
    if query:
        match = Q(question__icontains=query) | Q(answer__icontains=query) | Q(category__icontains=query)
        for language in others:  # codes of two letters (language_code): safe in a lookup
            match |= Q(**{f"translations__{language}__question__icontains": query})
            match |= Q(**{f"translations__{language}__answer__icontains": query})
        entries = entries.filter(match)
    if missing == MISSING_ANY:
        entries = entries.exclude(translations__has_keys=others) if others else entries.none()
    elif missing:
        if missing not in others:
            raise ServiceError(f"{tenant.name} writes no other language {missing!r}: filter by one of "
                               f"{', '.join(others) or 'none'}, or by any.", "invalid_filter")
        entries = entries.exclude(translations__has_key=missing)
    return entries


def missing_count(tenant: Tenant) -> int:
    """How many of the store's entries lack a version in one of its other languages."""
    others = other_languages(tenant)
    if not others:
        return 0
    return KnowledgeEntry.objects.filter(tenant=tenant).exclude(translations__has_keys=others).count()


def written_in(entry: KnowledgeEntry, languages: list[str]) -> list[tuple[str, bool]]:
    """(language, whether the entry has its version) for each of `languages`, the main one first."""
    main, translations = languages[0], entry.translations or {}
    return [(language, language == main or isinstance(translations.get(language), dict)) for language in languages]

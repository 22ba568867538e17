"""The managers' content pages in the console: the store's knowledge base and its texts, each language the
store lists side by side. Thin: the store comes from chatbot.conversations.access (managers only), reads and
writes from chatbot.console.knowledge and chatbot.console.texts, their refusals land on the forms' fields."""
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chatbot.console import knowledge, texts
from chatbot.console.forms import KnowledgeEntryForm, StoreTextsForm, field_of
from chatbot.console.languages import language_columns, language_name, store_languages
from chatbot.console.views import _managed, _page, console_view, managed_tenant
from chatbot.errors import ServiceError
from chatbot.models import KnowledgeEntry, Tenant

NOT_A_MANAGER = "Only a store's managers may change its knowledge base and texts."
PAGE_SIZE = 50
# The list's filters a write on it returns to (the page the manager was on).
LIST_FILTERS = ("q", "missing", "page")


def _list_url(tenant: Tenant, params) -> str:
    query = {"tenant": tenant.slug, **{name: params[name] for name in LIST_FILTERS if params.get(name)}}
    return f"{reverse('console:knowledge')}?{urlencode(query)}"


def _context(request: HttpRequest, tenant: Tenant, tab: str, **extra) -> dict:
    return _page(request, "knowledge", tenant=tenant, tab=tab, managed=_managed(request),
                 columns=language_columns(tenant), **extra)


@console_view
@require_GET
def knowledge_list(request: HttpRequest) -> HttpResponse:
    """The store's entries with the languages each is written in; search and "missing a language" filter."""
    tenant = managed_tenant(request, request.GET, NOT_A_MANAGER)
    query, missing = request.GET.get("q", ""), request.GET.get("missing", "")
    languages = store_languages(tenant)
    context = {"query": query.replace("\x00", ""), "missing": missing,
               "filters": urlencode({"tenant": tenant.slug, **({"q": query} if query else {}),
                                     **({"missing": missing} if missing else {})})}
    try:
        entries = knowledge.knowledge_entries(tenant, query, missing)
    except ServiceError as exc:
        return render(request, "console/knowledge.html",
                      _context(request, tenant, "entries", error=exc.detail, rows=[], **context), status=400)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"entry": entry, "versions": [{"code": code, "name": language_name(code), "written": written}
                                          for code, written in knowledge.written_in(entry, languages)]}
            for entry in page]
    return render(request, "console/knowledge.html", _context(
        request, tenant, "entries", rows=rows, page=page, total=KnowledgeEntry.objects.filter(tenant=tenant).count(),
        missing_total=knowledge.missing_count(tenant), **context))


def _entry_page(request: HttpRequest, tenant: Tenant, form: KnowledgeEntryForm, entry: KnowledgeEntry | None,
                status: int = 200) -> HttpResponse:
    return render(request, "console/knowledge_edit.html",
                  _context(request, tenant, "entries", form=form, entry=entry, back=_list_url(tenant, request.GET),
                           unlisted=_unlisted(entry, store_languages(tenant))), status=status)


def _unlisted(entry: KnowledgeEntry | None, languages: list[str]) -> list[str]:
    """The entry's versions in languages the store no longer lists: kept, though not shown to edit."""
    return [language_name(code) for code in (entry.translations or {}) if code not in languages] if entry else []


def _entry_save(request: HttpRequest, tenant: Tenant, form: KnowledgeEntryForm,
                entry_id: int | None = None) -> KnowledgeEntry | None:
    """Hand a valid form to the service; its refusals of the input land on the form's fields."""
    if not form.is_valid():
        return None
    try:
        return knowledge.knowledge_entry_save(
            request.user, tenant, form.cleaned_data["question"], form.cleaned_data["answer"],
            translations=form.translations(), category=form.cleaned_data["category"], entry_id=entry_id)
    except knowledge.KnowledgeEntryInvalid as exc:
        form.add_error(field_of(form, exc.field), exc.detail)
        return None


@console_view
@require_http_methods(["GET", "POST"])
def knowledge_add(request: HttpRequest) -> HttpResponse:
    tenant = managed_tenant(request, request.POST if request.method == "POST" else request.GET, NOT_A_MANAGER)
    languages = store_languages(tenant)
    if request.method == "GET":
        return _entry_page(request, tenant, KnowledgeEntryForm(languages=languages), None)
    form = KnowledgeEntryForm(request.POST, languages=languages)
    saved = _entry_save(request, tenant, form)
    if saved is None:
        return _entry_page(request, tenant, form, None, status=400)
    messages.success(request, f"Added “{saved.question}”.")
    return redirect(_list_url(tenant, {}))


@console_view
@require_http_methods(["GET", "POST"])
def knowledge_edit(request: HttpRequest, entry_id: int) -> HttpResponse:
    """An entry's versions side by side, one column per language of its store."""
    entry = knowledge.knowledge_entry_of(request.user, entry_id)
    tenant, languages = entry.tenant, store_languages(entry.tenant)
    if request.method == "GET":
        initial = {"category": entry.category, "question": entry.question, "answer": entry.answer}
        for language in languages[1:]:
            version = (entry.translations or {}).get(language) or {}
            initial[f"question_{language}"] = version.get("question", "")
            initial[f"answer_{language}"] = version.get("answer", "")
        return _entry_page(request, tenant, KnowledgeEntryForm(initial=initial, languages=languages), entry)
    form = KnowledgeEntryForm(request.POST, languages=languages)
    saved = _entry_save(request, tenant, form, entry_id=entry.id)
    if saved is None:
        return _entry_page(request, tenant, form, entry, status=400)
    messages.success(request, f"Saved “{saved.question}”.")
    return redirect(_list_url(tenant, request.GET))  # the list's filters ride in the page's address


@console_view
@require_POST
def knowledge_active(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Activate (active=1) or deactivate (active=0) an entry: an inactive one grounds no answer."""
    entry = knowledge.knowledge_entry_activate(request.user, entry_id, request.POST.get("active") == "1")
    messages.success(request, f"{'Activated' if entry.is_active else 'Deactivated'} “{entry.question}”.")
    return redirect(_list_url(entry.tenant, request.POST))


@console_view
@require_POST
def knowledge_delete(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = knowledge.knowledge_entry_delete(request.user, entry_id)
    messages.success(request, f"Deleted “{entry.question}”.")
    return redirect(_list_url(entry.tenant, request.POST))


@console_view
@require_http_methods(["GET", "POST"])
def store_texts(request: HttpRequest) -> HttpResponse:
    """The store's texts side by side per language, and what the bot does without an answer in a language."""
    tenant = managed_tenant(request, request.POST if request.method == "POST" else request.GET, NOT_A_MANAGER)
    languages = store_languages(tenant)
    status = 200
    if request.method == "POST":
        form = StoreTextsForm(request.POST, tenant=tenant, languages=languages)
        if form.is_valid():
            try:
                texts.store_texts_save(request.user, tenant, form.main_texts(), form.translations(),
                                       form.cleaned_data["untranslated"])
            except texts.StoreTextsInvalid as exc:
                form.add_error(field_of(form, exc.field), exc.detail)
            else:
                messages.success(request, f"Saved {tenant.name}'s texts.")
                return redirect(f"{reverse('console:texts')}?{urlencode({'tenant': tenant.slug})}")
        status = 400
    else:
        form = StoreTextsForm(initial=StoreTextsForm.initial_of(tenant, languages), tenant=tenant, languages=languages)
    return render(request, "console/texts.html", _context(request, tenant, "texts", form=form), status=status)

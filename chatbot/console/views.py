"""The agent console's pages: the live inbox (its data rendered as JSON for console.js, which
talks to /ws/agent/) and the canned replies. Thin: access checks and reads come from
chatbot.conversations.access and chatbot.conversations.selectors, writes from chatbot.console.canned.
The knowledge base and the store's texts are in chatbot.console.content_views."""
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from chatbot.conversations import access, selectors

from chatbot.console import canned
from chatbot.errors import AssignedToOther, InvalidState, NotFound, PermissionDenied, RateLimited, ServiceError
from chatbot.console.forms import CannedReplyForm, field_of
from chatbot.console.languages import other_languages, store_languages
from chatbot.models import AgentMembership, CannedReply, Tenant
from chatbot.conversations.payloads import display_name

NOT_A_MEMBER = "You are not a member of any store's team."
# The HTTP status of a kind of refusal (chatbot.errors) beyond 404 and 403; the rest of the family answers 400.
HTTP_STATUS = ((RateLimited, 429), (InvalidState, 409), (AssignedToOther, 409))


def _forbidden(request: HttpRequest, detail: str, *, member: bool = True) -> HttpResponse:
    return render(request, "console/forbidden.html", {"detail": detail, "member": member}, status=403)


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, exc: ServiceError, template: str | None = None,
                   context: dict | None = None) -> HttpResponse:
    """The one place a service's refusal becomes an HTTP response, so every console page answers alike.

    NotFound is Django's 404 (the same for another store's object as for a missing one), PermissionDenied the
    console's 403 page; any other refusal answers its HTTP_STATUS with {"ok": false, "code", "detail"} to a
    client that asks for JSON, else `template` rendered with `context` and `error` (the detail), else the
    detail as plain text."""
    if isinstance(exc, NotFound):
        raise Http404("Not found.") from None
    if isinstance(exc, PermissionDenied):
        return _forbidden(request, exc.detail)
    status = next((status for kind, status in HTTP_STATUS if isinstance(exc, kind)), 400)
    if wants_json(request):
        return JsonResponse({"ok": False, "code": exc.code, "detail": exc.detail}, status=status)
    if template is not None:
        return render(request, template, {**(context or {}), "error": exc.detail}, status=status)
    return HttpResponse(exc.detail + "\n", content_type="text/plain; charset=utf-8", status=status)


def console_view(view):
    """Logged-in members of a store's team only; the services' refusals become responses here
    (error_response)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        tenants = list(access.tenants_of(request.user))
        if not tenants:
            return _forbidden(request, NOT_A_MEMBER, member=False)
        request.console_tenants = tenants
        request.console_roles = {t.id: access.role_in(request.user, t.id) for t in tenants}
        try:
            return view(request, *args, **kwargs)
        except ServiceError as exc:
            return error_response(request, exc)

    return wrapper


def _page(request: HttpRequest, section: str, **context) -> dict:
    """What every console page's header shows: who is logged in, her stores and roles."""
    roles = request.console_roles
    return {
        "section": section,
        "me_name": display_name(request.user),
        "stores": [{"tenant": t, "role": roles[t.id]} for t in request.console_tenants],
        **context,
    }


@console_view
def inbox(request: HttpRequest) -> HttpResponse:
    """The two-pane console; everything live comes over the socket."""
    user, tenants, roles = request.user, request.console_tenants, request.console_roles
    tenant_ids = [t.id for t in tenants]
    slugs = {t.id: t.slug for t in tenants}
    main_languages = {t.id: t.main_language for t in tenants}
    data = {
        "me": {"id": user.pk, "name": display_name(user), "username": user.get_username()},
        "tenants": [{"slug": t.slug, "name": t.name, "role": roles[t.id], "languages": t.languages or []}
                    for t in tenants],
        "teams": {
            t.slug: [{"id": m.user_id, "name": display_name(m.user), "role": m.role, "languages": m.languages or []}
                     for m in selectors.team_of(t.id)]
            for t in tenants
        },
        # Each reply's text is in its store's main language (`language`); console.js inserts the version in
        # the conversation's language when the store wrote one (`translations`, language -> text).
        "canned": [{"tenant": slugs[r.tenant_id], "shortcut": r.shortcut, "text": r.text,
                    "language": main_languages[r.tenant_id], "translations": r.translations or {}}
                   for r in selectors.canned_replies(tenant_ids)],
        "counts": selectors.inbox_counts(user),
        # The languages she answers in, per store: conversations in one of them are marked "you speak it".
        "speaks": {slugs[tenant_id]: languages or [] for tenant_id, languages in AgentMembership.objects.filter(
            user=user, tenant_id__in=tenant_ids).values_list("tenant_id", "languages")},
        "socket_path": "/ws/agent/",
        "login_url": reverse("login") + "?next=" + reverse("console:inbox"),
    }
    return render(request, "console/inbox.html", _page(request, "inbox", console_data=data))


def _managed(request: HttpRequest) -> list[Tenant]:
    roles = request.console_roles
    return [t for t in request.console_tenants if roles[t.id] == AgentMembership.Role.MANAGER]


def managed_tenant(request: HttpRequest, params, refusal: str) -> Tenant:
    """The store a manager's page is about: the `tenant` slug of `params`, else the first she manages;
    `refusal` is the 403's text for someone who manages none."""
    slug = params.get("tenant", "")
    if not slug:
        managed = _managed(request)
        if not managed:
            raise PermissionDenied(refusal)
        slug = managed[0].slug
    return access.access_tenant(request.user, slug, manager=True)


def _save(request: HttpRequest, form: CannedReplyForm, reply_id: int | None = None) -> CannedReply | None:
    """Hand a valid form to the service; its refusals of the input land on the form's fields."""
    if not form.is_valid():
        return None
    try:
        return canned.canned_reply_save(request.user, form.cleaned_data["tenant"], form.cleaned_data["shortcut"],
                                        form.cleaned_data["text"], reply_id=reply_id,
                                        translations=form.translations())
    except canned.CannedReplyInvalid as exc:
        form.add_error(field_of(form, exc.field), exc.detail)
        return None


def _canned_form(tenants: list[Tenant], data=None, **kwargs) -> CannedReplyForm:
    """The form with a version per other language of its stores (of all of them, when she manages several: the
    service refuses a version in a language the chosen store does not list)."""
    languages = list(dict.fromkeys(language for t in tenants for language in other_languages(t)))
    mains = {t.main_language for t in tenants}
    return CannedReplyForm(data, tenants=tenants, languages=languages,
                           main_language=mains.pop() if len(mains) == 1 else "", **kwargs)


@console_view
@require_http_methods(["GET", "POST"])
def canned_list(request: HttpRequest) -> HttpResponse:
    """Every canned reply of the user's stores; managers add new ones here."""
    managed = _managed(request)
    form = _canned_form(managed)
    status = 200
    if request.method == "POST":
        # Authorise before validating: an agent's write is refused (403), not just invalid.
        access.access_tenant(request.user, request.POST.get("tenant", ""), manager=True)
        form = _canned_form(managed, request.POST)
        saved = _save(request, form)
        if saved:
            messages.success(request, f"Saved /{saved.shortcut}.")
            return redirect("console:canned")
        status = 400
    tenant_ids = [t.id for t in request.console_tenants]
    replies = selectors.canned_replies(tenant_ids)
    managed_ids = {t.id for t in managed}
    # `languages`: the badges of each reply's versions, where the store writes in more than one language.
    groups = [{"tenant": t, "manages": t.id in managed_ids, "replies": [r for r in replies if r.tenant_id == t.id],
               "languages": languages if len(languages) > 1 else []}
              for t in request.console_tenants for languages in [store_languages(t)]]
    return render(request, "console/canned.html",
                  _page(request, "canned", form=form, groups=groups, can_write=bool(managed)), status=status)


@console_view
@require_http_methods(["GET", "POST"])
def canned_edit(request: HttpRequest, reply_id: int) -> HttpResponse:
    reply = canned.canned_reply_of(request.user, reply_id, manager=True)
    initial = {"tenant": reply.tenant.slug, "shortcut": reply.shortcut, "text": reply.text,
               **{f"text_{language}": text for language, text in (reply.translations or {}).items()}}
    status = 200
    if request.method == "POST":
        data = request.POST.copy()
        data["tenant"] = reply.tenant.slug  # a reply stays in its store
        form = _canned_form([reply.tenant], data)
        saved = _save(request, form, reply_id=reply.id)
        if saved:
            messages.success(request, f"Saved /{saved.shortcut}.")
            return redirect("console:canned")
        status = 400
    else:
        form = _canned_form([reply.tenant], initial=initial)
    return render(request, "console/canned_edit.html", _page(request, "canned", form=form, reply=reply),
                  status=status)


@console_view
@require_POST
def canned_delete(request: HttpRequest, reply_id: int) -> HttpResponse:
    reply = canned.canned_reply_delete(request.user, reply_id)
    messages.success(request, f"Deleted /{reply.shortcut}.")
    return redirect("console:canned")

"""The managers' pages of the console: transcript review, the review queue and the export. Thin: the
filters, queries and export rows come from chatbot.review.queries, labelling from chatbot.review.services.

Pages without an object answer 403 to a member who manages no store; pages of one conversation or
message look it up first, so another store's id answers 404 exactly like a missing one.
"""
from datetime import date

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from chatbot.conversations import access, selectors

from chatbot.review import queries as review, services as review_services
from chatbot.console.views import _page, console_view, error_response, wants_json
from chatbot.errors import PermissionDenied
from chatbot.conversations.payloads import agent_message_payload, conversation_payload


def _stores(request: HttpRequest) -> list:
    return review.managed_tenants(request.user)


@console_view
@require_GET
def review_list(request: HttpRequest) -> HttpResponse:
    """Conversations by filters (query parameters, so a view is a bookmark), latest activity first."""
    tenant_ids = review.managed_tenant_ids(request.user)
    stores = _stores(request)
    try:
        filters = review.filters_from(request.user, request.GET)
    except review.InvalidFilter as exc:  # the page itself, unfiltered, says what is wrong with the filter
        unfiltered = review.Filters(tenant_ids=tenant_ids)
        return error_response(request, exc, "console/review.html", _page(
            request, "review", stores_managed=stores, filters=unfiltered, choices=review.choices(unfiltered),
            page=None, many_stores=len(stores) > 1))
    paginator = Paginator(review.conversations(filters), review.PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    rows = [{"c": conversation_payload(c), "updated": c.updated_at} for c in page.object_list]
    return render(request, "console/review.html", _page(
        request, "review", stores_managed=stores, filters=filters, choices=review.choices(filters), page=page,
        rows=rows, many_stores=len(stores) > 1, query=filters.query(),
        export_csv=filters.query(format="csv", rows="conversation"),
        export_messages=filters.query(format="jsonl", rows="message"),
    ))


def action_title(entry: dict) -> str:
    """A store action in a reply's why, in a line (console.js actionTitle): what was looked up, and with what."""
    params = ", ".join(f"{k} {v}" for k, v in (entry.get("params") or {}).items())
    result = entry.get("result") or {}
    found = " · ".join(str(result[k]) for k in ("state", "carrier", "tracking_number") if result.get(k))
    title = f"store action {entry['action']}: {entry.get('outcome', '')}" + (f" [{params}]" if params else "")
    title += f" → {found}" if found else (f" ({entry['detail']})" if entry.get("detail") else "")
    return title + (f" · {round(entry['latency_ms'])} ms" if entry.get("latency_ms") is not None else "")


def _grounding_row(entry: dict) -> dict:
    """A grounding entry of a reply's why as the console names it (console.js groundingTitle)."""
    if entry.get("action"):
        return {"title": action_title(entry), "intent": "", "score": None}
    title = entry.get("question") or entry.get("message") or (f"rule: {entry['rule']}" if entry.get("rule") else "")
    if not title:
        title = f"Entry #{entry['entry']}" if entry.get("entry") else f"Example #{entry.get('example', '?')}"
    return {"title": title, "intent": entry.get("intent", ""), "score": entry.get("score")}


@console_view
@require_GET
def review_conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """One conversation's transcript with every message's labels and each bot reply's why."""
    conversation = access.access_conversation(request.user, conversation_id)
    if not access.is_manager(request.user, conversation.tenant_id):
        raise PermissionDenied("Only the store's managers can review its conversations.")
    messages = selectors.transcript(conversation.id, limit=2000)
    feedback = review.feedback_of([m.id for m in messages])
    items = [{"m": agent_message_payload(m), "language": m.language, "feedback": feedback.get(m.id, []),
              "grounding": [_grounding_row(g) for g in (m.grounding or []) if isinstance(g, dict)]}
             for m in messages]
    back = request.GET.get("back", "")
    if not back.startswith("?"):
        back = ""
    return render(request, "console/review_conversation.html", _page(
        request, "review", conversation=conversation_payload(conversation), items=items, back=back,
        transitions=list(conversation.transitions.select_related("actor", "to_agent").order_by("id")),
    ))


@console_view
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    """The bot's replies and hand-offs nobody reviewed yet, weakest first, each labelled in one click."""
    tenant_ids = review.managed_tenant_ids(request.user)
    stores = _stores(request)
    store = (request.GET.get("store") or "").strip()
    if store:
        tenant_ids = (access.access_tenant(request.user, store, manager=True).id,)
    try:
        number = max(1, int(request.GET.get("page") or 1))
    except ValueError:
        number = 1
    size = review.QUEUE_PAGE_SIZE
    items, total = review.queue_page(tenant_ids, number, size)
    intents = review.tenant_intents(tenant_ids)
    rows = [{
        "item": item, "asked": item.reply_to, "reasons": review.queue_reasons(item), "rank": (number - 1) * size + i,
        "intents": sorted(set(intents.get(item.conversation.tenant_id, [])) | (
            {item.reply_to.intent} if item.reply_to and item.reply_to.intent else set())),
    } for i, item in enumerate(items, 1)]
    return render(request, "console/review_queue.html", _page(
        request, "review", stores_managed=stores, store=store, rows=rows, total=total, number=number,
        has_next=number * size < total, sentiments=review.SENTIMENTS, many_stores=len(stores) > 1,
        this_url=request.get_full_path(),
    ))


@console_view
@require_POST
def review_label(request: HttpRequest, message_id: int) -> HttpResponse:
    """Label a queue item (its intent, sentiment, the right reply): a feedback record, and it leaves the queue."""
    feedback = review_services.review_label(
        request.user, message_id, intent=request.POST.get("intent", ""),
        sentiment=request.POST.get("sentiment", ""), reply=request.POST.get("reply", ""))
    if wants_json(request):
        return JsonResponse({"ok": True, "message": message_id, "feedback": feedback.id,
                             "rating": feedback.rating})
    target = request.POST.get("next", "")
    if not (target.startswith(reverse("console:review-queue"))
            and url_has_allowed_host_and_scheme(target, allowed_hosts=None)):
        target = reverse("console:review-queue")
    return redirect(target)


async def _async_chunks(chunks):
    """A sync generator served to an ASGI server a chunk at a time (Django would read a sync iterator whole)."""
    done = object()
    while True:
        chunk = await sync_to_async(next, thread_sensitive=True)(chunks, done)
        if chunk is done:
            return
        yield chunk


@console_view
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    """The filtered conversations or messages as CSV or JSON Lines, streamed a batch at a time."""
    review.managed_tenant_ids(request.user)
    fmt, rows = review.export_check(request.GET)
    filters = review.filters_from(request.user, request.GET)
    chunks = review.export_lines(filters, rows, fmt)
    content = _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl; charset=utf-8"
    response = StreamingHttpResponse(content, content_type=content_type)
    name = f"{filters.store or 'stores'}-{rows}s-{date.today().isoformat()}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


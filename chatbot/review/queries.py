"""Managers' review, reads only: the transcript review's filters, the review queue ranked by where
the models are weakest, and the rows of an export. Labelling a queue item is in review_services.

Filters come from query parameters (so a filtered view is a bookmark, and the export takes the same
ones); a value that cannot be one is refused with InvalidFilter, never silently dropped. Every query
is scoped to the stores the user manages (one of them with `store`).
"""
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import (
    Case, Count, Exists, ExpressionWrapper, F, FloatField, OuterRef, Q, QuerySet, Subquery, Value, When,
    Window,
)
from django.db.models.functions import Abs, Greatest
from django.db.models.lookups import Exact
from django.utils import timezone

from chatbot.actions.connectors.base import ACTIONS
from chatbot.conversations import access
from chatbot.errors import PermissionDenied, ServiceError
from chatbot.models import (
    ActionCall, AgentMembership, Conversation, Feedback, HandoffReason, Message, ModelVersion, SentimentExample,
    Tenant, TrainingExample,
)
from chatbot.conversations.payloads import iso
from nlu import OUT_OF_SCOPE

S = Conversation.Status
SENTIMENTS = tuple(SentimentExample.Label.values)
CSAT_CHOICES = ("1", "2", "3", "4", "5", "low", "high", "none")
# Store actions (chatbot.actions) a conversation's calls can be filtered by, and their outcomes with labels.
ACTION_OUTCOMES = (
    (ActionCall.Outcome.OK, "OK: answered with the order"),
    (ActionCall.Outcome.NOT_MATCHED, "Not matched: no such order, or not hers"),
    (ActionCall.Outcome.NEEDS, "Needs: the store asked for more"),
    (ActionCall.Outcome.FAILED, "Failed: no usable answer"),
    (ActionCall.Outcome.LIMITED, "Limited: not called, too many misses"),
)
# The codes a conversation's hand-off can have (`fallback` marks bot replies only), with their labels.
HANDOFF_REASONS = tuple((code.value, code.label) for code in HandoffReason if code != HandoffReason.FALLBACK)
# `reason` values of bookmarks and links made before the codes: the texts the old filter offered, and the
# beginnings it matched ("language: es" reads as `language`).
LEGACY_REASONS = {
    "visitor asked for a person": HandoffReason.ASKED_FOR_PERSON,
    "negative sentiment": HandoffReason.NEGATIVE_SENTIMENT,
    "out-of-scope": HandoffReason.OUT_OF_SCOPE,
    "low intent confidence": HandoffReason.LOW_CONFIDENCE,
    "low responder score": HandoffReason.LOW_RESPONDER_SCORE,
    "fallback": HandoffReason.REPEATED_FALLBACK,
    "language:": HandoffReason.LANGUAGE,
    "the bot failed": HandoffReason.BOT_UNAVAILABLE,
    "bot unavailable": HandoffReason.BOT_UNAVAILABLE,
}
MAX_QUERY = 200
PAGE_SIZE = 25
QUEUE_PAGE_SIZE = 20
EXPORT_BATCH = 2000
EXPORT_FORMATS = ("csv", "jsonl")
EXPORT_ROWS = ("conversation", "message")
# How far above the store's intent threshold a confidence still counts as "near" it in the queue.
NEAR_THRESHOLD = 0.15


class InvalidFilter(ServiceError):
    """A query parameter that cannot be what it names (answered with 400)."""

    code = "invalid_filter"


# --- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The review's filters; `tenant_ids` are the stores they cover (the user's managed ones)."""

    tenant_ids: tuple[int, ...] = ()
    store: str = ""
    status: str = ""
    handed_off: str = ""  # "yes" | "no"
    reason: str = ""  # a hand-off code (chatbot.models.HandoffReason)
    intent: str = ""
    sentiment: str = ""
    rating: str = ""  # a visitor's thumbs on a bot reply: "up" | "down"
    csat: str = ""  # 1..5, "low" (1-2), "high" (4-5), "none"
    language: str = ""
    date_from: date | None = None
    date_to: date | None = None
    agent: int | None = None
    model: str = ""  # a model version: of a reply, or of the labels of a visitor message
    q: str = ""  # full-text search in messages
    action: str = ""  # a store action the conversation called (chatbot.actions.connectors.base.ACTIONS)
    action_outcome: str = ""  # an outcome of one of its calls (ActionCall.Outcome); with `action`, of that action

    PARAMS = ("store", "status", "handed_off", "reason", "intent", "sentiment", "rating", "csat", "language",
              "date_from", "date_to", "agent", "model", "q", "action", "action_outcome")

    def params(self) -> dict[str, str]:
        """The filters that are set, as query parameters."""
        values = {}
        for name in self.PARAMS:
            value = getattr(self, name)
            if value not in ("", None):
                values[name] = value.isoformat() if isinstance(value, date) else str(value)
        return values

    def query(self, **more) -> str:
        """The query string of these filters plus `more` (None drops a key)."""
        values = self.params() | {k: v for k, v in more.items() if v is not None}
        return urlencode({k: v for k, v in values.items() if v != ""})

    @property
    def active(self) -> bool:
        return any(k != "store" for k in self.params())


def managed_tenants(user: AbstractBaseUser) -> list[Tenant]:
    """The active stores the user manages (every one for a superuser), by name."""
    tenants = list(access.tenants_of(user))
    if access.sees_all_tenants(user):
        return tenants
    managed = set(AgentMembership.objects.filter(user=user, role=AgentMembership.Role.MANAGER)
                  .values_list("tenant_id", flat=True))
    return [t for t in tenants if t.id in managed]


def managed_tenant_ids(user: AbstractBaseUser) -> tuple[int, ...]:
    ids = tuple(t.id for t in managed_tenants(user))
    if not ids:
        raise PermissionDenied("Only a store's managers can review its conversations.")
    return ids


def _text(params, name: str, limit: int = 100) -> str:
    value = (params.get(name) or "").replace("\x00", "").strip()
    if len(value) > limit:
        raise InvalidFilter(f"`{name}` is longer than {limit} characters.")
    return value


def _choice(params, name: str, choices) -> str:
    value = _text(params, name)
    if value and value not in choices:
        raise InvalidFilter(f"`{name}` must be one of {', '.join(choices)} (got {value!r}).")
    return value


def _date(params, name: str) -> date | None:
    value = _text(params, name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidFilter(f"`{name}` must be a date like 2026-01-31 (got {value!r}).") from None


def _reason(params) -> str:
    """The `reason` filter as a hand-off code; an old bookmark's text (LEGACY_REASONS) is read as its code."""
    value = _text(params, "reason")
    value = next((code for text, code in LEGACY_REASONS.items() if value.lower().startswith(text)), value)
    codes = dict(HANDOFF_REASONS)
    if value and value not in codes:
        raise InvalidFilter(f"`reason` must be one of {', '.join(codes)} (got {value!r}).")
    return value


def filters_from(user: AbstractBaseUser, params) -> Filters:
    """The filters of a request's query parameters, for a manager; refuses values they cannot have.

    A `store` she does not manage answers NotFound (not hers) or PermissionDenied (she is an agent there)."""
    tenant_ids = managed_tenant_ids(user)
    store = _text(params, "store")
    if store:
        tenant_ids = (access.access_tenant(user, store, manager=True).id,)
    agent = _text(params, "agent")
    if agent and not agent.isdecimal():
        raise InvalidFilter(f"`agent` must be a user id (got {agent!r}).")
    language = _text(params, "language", 10).lower()
    if language and not re.fullmatch(r"[a-z]{2,3}", language):
        raise InvalidFilter(f"`language` must be a language code like en or es (got {language!r}).")
    filters = Filters(
        tenant_ids=tenant_ids, store=store,
        status=_choice(params, "status", S.values),
        handed_off=_choice(params, "handed_off", ("yes", "no")),
        reason=_reason(params),
        intent=_text(params, "intent"),
        sentiment=_choice(params, "sentiment", SENTIMENTS),
        rating=_choice(params, "rating", Feedback.Rating.values),
        csat=_choice(params, "csat", CSAT_CHOICES),
        language=language,
        date_from=_date(params, "date_from"), date_to=_date(params, "date_to"),
        agent=int(agent) if agent else None,
        model=_text(params, "model"),
        q=_text(params, "q", MAX_QUERY),
        action=_choice(params, "action", ACTIONS),
        action_outcome=_choice(params, "action_outcome", ActionCall.Outcome.values),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidFilter("`date_from` is after `date_to`.")
    return filters


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _search(q: str) -> Q:
    """Messages whose text matches `q`: PostgreSQL full-text search (websearch syntax: words, "a phrase",
    -not, or), served by the GIN index of migration 0007; a plain substring match elsewhere."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorExact

        return Q(SearchVectorExact(SearchVector("text", config="simple"),
                                   SearchQuery(q, config="simple", search_type="websearch")))
    return Q(text__icontains=q)


def _message_model(version: str) -> Q:
    """Messages made or labelled by model version `version` (a reply's "responder:V" matches V too)."""
    return (Q(model_version=version) | Q(model_version=f"responder:{version}")
            | Q(label_versions__intent=version) | Q(label_versions__sentiment=version))


def _message_conditions(f: Filters) -> list[Q]:
    """The filters that apply to a message itself (its labels, versions, text)."""
    conditions = []
    if f.intent:
        conditions.append(Q(intent=f.intent))
    if f.sentiment:
        conditions.append(Q(sentiment=f.sentiment))
    if f.language:
        conditions.append(Q(language=f.language))
    if f.model:
        conditions.append(_message_model(f.model))
    if f.q:
        conditions.append(_search(f.q))
    return conditions


def _conversation_conditions(f: Filters, prefix: str, ref: str) -> list[Q]:
    """The filters that apply to a conversation, for a query of conversations (prefix "", ref "pk") or of
    messages (prefix "conversation__", ref "conversation_id")."""
    p = prefix
    conditions = [Q(**{f"{p}tenant_id__in": f.tenant_ids})]
    if f.status:
        conditions.append(Q(**{f"{p}status": f.status}))
    if f.handed_off == "yes":
        conditions.append(~Q(**{f"{p}handoff_code": ""}))
    elif f.handed_off == "no":
        conditions.append(Q(**{f"{p}handoff_code": ""}))
    if f.reason:
        conditions.append(Q(**{f"{p}handoff_code": f.reason}))
    if f.csat == "none":
        conditions.append(Q(**{f"{p}csat__isnull": True}))
    elif f.csat == "low":
        conditions.append(Q(**{f"{p}csat__lte": 2}))
    elif f.csat == "high":
        conditions.append(Q(**{f"{p}csat__gte": 4}))
    elif f.csat:
        conditions.append(Q(**{f"{p}csat": int(f.csat)}))
    if f.rating:
        conditions.append(Q(Exists(Feedback.objects.filter(
            message__conversation_id=OuterRef(ref), source=Feedback.Source.VISITOR, rating=f.rating))))
    if f.agent is not None:
        conditions.append(Q(**{f"{p}assigned_agent_id": f.agent}) | Q(Exists(Message.objects.filter(
            conversation_id=OuterRef(ref), sender=Message.Sender.AGENT, author_id=f.agent))))
    if f.action or f.action_outcome:
        # One call matching both: action=cancel_order&action_outcome=failed is a cancellation that failed, not a
        # conversation with some cancellation and some failure.
        call = {"action": f.action} if f.action else {}
        if f.action_outcome:
            call["outcome"] = f.action_outcome
        conditions.append(Q(Exists(ActionCall.objects.filter(conversation_id=OuterRef(ref), **call))))
    return conditions


def _created_within(qs: QuerySet, f: Filters) -> QuerySet:
    """Rows (conversations or messages) created within the filter's days, both ends included."""
    if f.date_from:
        qs = qs.filter(created_at__gte=_day_start(f.date_from))
    if f.date_to:
        qs = qs.filter(created_at__lt=_day_start(f.date_to + timedelta(days=1)))
    return qs


def conversations(f: Filters) -> QuerySet[Conversation]:
    """The conversations that match, latest activity first. Message filters match when any one message
    of the conversation matches (each filter on its own: an intent on one message, a search on another)."""
    qs = _created_within(Conversation.objects.filter(*_conversation_conditions(f, "", "pk")), f)
    for condition in _message_conditions(f):
        qs = qs.filter(Exists(Message.objects.filter(condition, conversation_id=OuterRef("pk"))))
    return qs.select_related("tenant", "visitor", "assigned_agent").order_by("-updated_at", "-id")


def messages(f: Filters) -> QuerySet[Message]:
    """The messages that match: of matching conversations, themselves matching the message filters
    (intent, sentiment, language: visitor messages; model: replies and labelled messages; search),
    sent within the dates."""
    qs = _created_within(Message.objects.filter(*_conversation_conditions(f, "conversation__", "conversation_id")), f)
    for condition in _message_conditions(f):
        qs = qs.filter(condition)
    return qs.order_by("id")


def choices(f: Filters) -> dict:
    """What the filter bar offers: the stores' intents, languages seen, agents and model versions."""
    ids = f.tenant_ids
    intents = sorted(set(TrainingExample.objects.filter(tenant_id__in=ids).exclude(intent="")
                         .values_list("intent", flat=True).distinct()) | {OUT_OF_SCOPE})
    listed = {lang for langs in Tenant.objects.filter(id__in=ids).values_list("languages", flat=True)
              for lang in (langs or [])}
    seen = set(Conversation.objects.filter(tenant_id__in=ids).exclude(language="")
               .values_list("language", flat=True).distinct())
    languages = sorted(listed | seen)
    agents = (AgentMembership.objects.filter(tenant_id__in=ids).select_related("user")
              .order_by("user__first_name", "user__username"))
    versions = list(ModelVersion.objects.filter(Q(tenant_id__in=ids) | Q(tenant__isnull=True))
                    .order_by("-created_at").values_list("kind", "version")[:50])
    return {
        "statuses": S.values, "sentiments": SENTIMENTS, "csat": CSAT_CHOICES, "reasons": HANDOFF_REASONS,
        "actions": ACTIONS, "action_outcomes": ACTION_OUTCOMES,
        "intents": intents, "languages": languages,
        "agents": list({m.user_id: m.user for m in agents}.values()),
        "models": [{"kind": kind, "version": version} for kind, version in versions],
    }


def tenant_intents(tenant_ids) -> dict[int, list[str]]:
    """Each store's intents (its labelled examples'), plus out_of_scope, sorted: the labels a reviewer picks."""
    found: dict[int, set[str]] = {tenant_id: {OUT_OF_SCOPE} for tenant_id in tenant_ids}
    rows = (TrainingExample.objects.filter(tenant_id__in=tenant_ids).exclude(intent="")
            .values_list("tenant_id", "intent").distinct())
    for tenant_id, intent in rows:
        found[tenant_id].add(intent)
    return {tenant_id: sorted(intents) for tenant_id, intents in found.items()}


def feedback_of(message_ids: list[int]) -> dict[int, list[Feedback]]:
    """The feedback records of these messages (visitors' thumbs, agents' and reviewers' labels), by message."""
    found: dict[int, list[Feedback]] = {}
    for feedback in Feedback.objects.filter(message_id__in=message_ids).select_related("agent").order_by("id"):
        found.setdefault(feedback.message_id, []).append(feedback)
    return found


# --- the review queue --------------------------------------------------------------------------

# Points of each sign of weakness; an item's score is their sum. Thumbs down and low CSAT are a customer's
# word, so they weigh most; then what the bot itself gave up on; then how unsure its labels were.
POINTS = {"thumbs_down": 5, "low_csat": 4, "handoff": 3, "fallback": 3, "out_of_scope": 3, "low_confidence": 3,
          "negative_streak": 2}
REASON_TEXT = {
    "thumbs_down": "thumbs down", "low_csat": "low CSAT", "handoff": "hand-off", "fallback": "fallback answer",
    "out_of_scope": "out of scope", "low_confidence": "low intent confidence",
    "near_threshold": "near the intent threshold", "negative_streak": "negative streak",
}


def queue(tenant_ids) -> QuerySet[Message]:
    """The bot's replies and hand-offs nobody has reviewed, with a `weakness` score (higher: weaker),
    computed in SQL over the whole set, weakest first; `total` is how many there are (a window count).

    Signs: a thumbs down (visitor or agent), the conversation's CSAT 1-2, a hand-off, a fallback reply,
    an out-of-scope intent, an intent confidence below the store's threshold or within NEAR_THRESHOLD
    above it (points fall linearly to 0), and a negative visitor message following another negative one.
    """
    bot, system, visitor = Message.Sender.BOT, Message.Sender.SYSTEM, Message.Sender.VISITOR
    confidence = F("reply_to__intent_confidence")
    threshold = F("conversation__tenant__min_intent_confidence")
    previous_sentiment = Subquery(
        Message.objects.filter(conversation_id=OuterRef("conversation_id"), sender=visitor,
                               seq__lt=OuterRef("reply_to__seq")).order_by("-seq").values("sentiment")[:1])
    near = ExpressionWrapper(
        Greatest(Value(0.0), Value(1.0) - Abs(confidence - threshold) / Value(NEAR_THRESHOLD)) * Value(
            float(POINTS["low_confidence"])), output_field=FloatField())
    items = (
        Message.objects.filter(conversation__tenant_id__in=tenant_ids, reviewed_at__isnull=True)
        .filter(Q(sender=bot) | (Q(sender=system) & ~Q(handoff_code="")))
        .annotate(
            thumbs_down=Exists(Feedback.objects.filter(message_id=OuterRef("pk"), rating=Feedback.Rating.DOWN)),
            low_csat=Case(When(conversation__csat__lte=2, then=Value(True)), default=Value(False)),
            handoff=Case(When(sender=system, then=Value(True)), default=Value(False)),
            fallback=Case(When(sender=bot, handoff_code=HandoffReason.FALLBACK, then=Value(True)),
                          default=Value(False)),
            out_of_scope=Case(When(reply_to__intent=OUT_OF_SCOPE, then=Value(True)), default=Value(False)),
            confidence_points=Case(
                When(reply_to__intent_confidence__isnull=True, then=Value(0.0)),
                When(reply_to__intent_confidence__lt=threshold, then=Value(float(POINTS["low_confidence"]))),
                default=near, output_field=FloatField()),
            negative_streak=Case(
                When(reply_to__sentiment="negative", then=Case(
                    When(Exact(previous_sentiment, Value("negative")), then=Value(True)), default=Value(False))),
                default=Value(False)),
        )
        .annotate(weakness=ExpressionWrapper(
            Case(When(thumbs_down=True, then=Value(POINTS["thumbs_down"])), default=Value(0))
            + Case(When(low_csat=True, then=Value(POINTS["low_csat"])), default=Value(0))
            + Case(When(handoff=True, then=Value(POINTS["handoff"])), default=Value(0))
            + Case(When(fallback=True, then=Value(POINTS["fallback"])), default=Value(0))
            + Case(When(out_of_scope=True, then=Value(POINTS["out_of_scope"])), default=Value(0))
            + Case(When(negative_streak=True, then=Value(POINTS["negative_streak"])), default=Value(0))
            + F("confidence_points"), output_field=FloatField()))
        .filter(weakness__gt=0)
    )
    return (items.annotate(total=Window(Count("id")))
            .order_by(F("weakness").desc(), F("reply_to__intent_confidence").asc(nulls_last=True), "-id"))


def queue_page(tenant_ids, number: int, size: int = QUEUE_PAGE_SIZE) -> tuple[list[Message], int]:
    """Page `number` (from 1) of the queue and the queue's length. The ranking reads narrow rows (id, score,
    count); only the page's items are then read whole, with their conversation, store and visitor message."""
    ranked = list(queue(tenant_ids).values_list("id", "total")[(number - 1) * size: number * size])
    if not ranked:
        return [], (queue(tenant_ids).count() if number > 1 else 0)
    ids = [pk for pk, _ in ranked]
    found = queue(tenant_ids).filter(pk__in=ids).select_related("conversation__tenant", "reply_to").in_bulk()
    return [found[pk] for pk in ids if pk in found], ranked[0][1]


def queue_reasons(item: Message) -> list[str]:
    """Why an item (a row of `queue`) is in the queue, in words; for the page's few rows."""
    reasons = [REASON_TEXT[name] for name in ("thumbs_down", "low_csat", "handoff", "fallback", "out_of_scope")
               if getattr(item, name)]
    confidence = item.reply_to.intent_confidence if item.reply_to else None
    if confidence is not None and item.confidence_points > 0:
        threshold = item.conversation.tenant.min_intent_confidence
        name = "low_confidence" if confidence < threshold else "near_threshold"
        reasons.append(f"{REASON_TEXT[name]} ({confidence:.2f}, threshold {threshold:.2f})")
    if item.negative_streak:
        reasons.append(REASON_TEXT["negative_streak"])
    return reasons


# --- export ------------------------------------------------------------------------------------

CONVERSATION_COLUMNS = (
    "id", "store", "created_at", "updated_at", "resolved_at", "status", "handed_off", "handoff_code",
    "handoff_reason", "assignee", "csat", "sentiment", "language", "messages", "visitor",
)
MESSAGE_COLUMNS = (
    "id", "conversation", "store", "seq", "created_at", "sender", "author", "private", "text", "intent",
    "intent_confidence", "sentiment", "sentiment_confidence", "language", "model_version", "label_versions",
    "score", "handoff_code", "handoff_reason", "reply_to", "visitor_rating",
)


def _conversation_rows(f: Filters, after: int, limit: int) -> list[dict]:
    rows = (conversations(f).filter(pk__gt=after).order_by("pk")
            .values_list("id", "tenant__slug", "created_at", "updated_at", "resolved_at", "status", "handoff_reason",
                         "assigned_agent__username", "csat", "last_sentiment", "language", "last_seq",
                         "visitor_id", "handoff_code")[:limit])
    return [{
        "id": r[0], "store": r[1], "created_at": iso(r[2]), "updated_at": iso(r[3]), "resolved_at": iso(r[4]),
        "status": r[5], "handed_off": bool(r[13]), "handoff_code": r[13], "handoff_reason": r[6],
        "assignee": r[7] or "", "csat": r[8], "sentiment": r[9], "language": r[10], "messages": r[11],
        "visitor": r[12],
    } for r in rows]


def _message_rows(f: Filters, after: int, limit: int) -> list[dict]:
    visitor_rating = Feedback.objects.filter(message_id=OuterRef("pk"), source=Feedback.Source.VISITOR).values(
        "rating")[:1]
    rows = (messages(f).filter(pk__gt=after).order_by("pk").annotate(visitor_rating=Subquery(visitor_rating))
            .values_list("id", "conversation_id", "conversation__tenant__slug", "seq", "created_at", "sender",
                         "author__username", "private", "text", "intent", "intent_confidence", "sentiment",
                         "sentiment_confidence", "language", "model_version", "label_versions", "score",
                         "handoff_reason", "reply_to_id", "visitor_rating", "handoff_code")[:limit])
    return [{
        "id": r[0], "conversation": r[1], "store": r[2], "seq": r[3], "created_at": iso(r[4]), "sender": r[5],
        "author": r[6] or "", "private": r[7], "text": r[8], "intent": r[9], "intent_confidence": r[10],
        "sentiment": r[11], "sentiment_confidence": r[12], "language": r[13], "model_version": r[14],
        "label_versions": r[15] or {}, "score": r[16], "handoff_code": r[20], "handoff_reason": r[17],
        "reply_to": r[18],
        "visitor_rating": r[19] or "",
    } for r in rows]


def export_batches(f: Filters, rows: str, batch: int = EXPORT_BATCH) -> Iterator[list[dict]]:
    """The matching rows in batches of `batch`, by id: keyset pagination, so memory stays flat however
    many rows match, and each batch is a query of its own (no cursor held open between them)."""
    fetch = _conversation_rows if rows == "conversation" else _message_rows
    after = 0
    while True:
        chunk = fetch(f, after, batch)
        if not chunk:
            return
        yield chunk
        after = chunk[-1]["id"]
        if len(chunk) < batch:
            return


def _csv_cell(value):
    """A cell as spreadsheets should read it: JSON for structures, and text that a spreadsheet would run as a
    formula (=, +, -, @ first) prefixed with a quote (OWASP's CSV injection advice)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_lines(f: Filters, rows: str, fmt: str, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The export as text chunks (one per batch): CSV with a header row, or JSON Lines."""
    columns = CONVERSATION_COLUMNS if rows == "conversation" else MESSAGE_COLUMNS
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        yield buffer.getvalue()
        for chunk in export_batches(f, rows, batch):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([[_csv_cell(row[c]) for c in columns] for row in chunk])
            yield buffer.getvalue()
    else:
        for chunk in export_batches(f, rows, batch):
            yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in chunk)


def export_check(params) -> tuple[str, str]:
    """The export's `format` (csv, jsonl) and `rows` (conversation, message), or InvalidFilter."""
    fmt = (params.get("format") or "csv").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise InvalidFilter(f"`format` must be csv or jsonl (got {fmt[:20]!r}).")
    rows = (params.get("rows") or "conversation").strip().lower()
    if rows not in EXPORT_ROWS:
        raise InvalidFilter(f"`rows` must be conversation or message (got {rows[:20]!r}).")
    return fmt, rows

"""Insights: a store's figures over a date range, each aggregated in SQL (one grouped query per figure,
no per-row Python), with the review-page filters that list the conversations behind every number.

Conversation figures count the conversations started in the range; message figures (sentiment, intents,
languages) count the visitor messages sent in it. Days are UTC calendar days (settings.TIME_ZONE).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import (
    Avg, Count, DateTimeField, Exists, ExpressionWrapper, F, FloatField, Func, OuterRef, Q, QuerySet, Subquery, Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from chatbot.models import ActionCall, Conversation, ConversationTransition, Feedback, HandoffReason, Message

S = Conversation.Status
SENDER = Message.Sender
DEFAULT_DAYS = 30
MAX_DAYS = 366
# A visitor back on the same intent this soon after a conversation ended means the bot had not solved it.
RETURN_WINDOW = timedelta(days=7)
TOP_LIMIT = 10
REVIEW_PATH = "/console/review/"
SENTIMENTS = ("negative", "neutral", "positive")

@dataclass(frozen=True)
class Period:
    """Calendar days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone())

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def as_query(self) -> dict:
        """The period as the insights pages' query parameters."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    def as_filters(self) -> dict:
        """The period as the review page's filters."""
        return day_filters(self.start, self.end)


def day_filters(first: date, last: date | None = None) -> dict:
    return {"date_from": first.isoformat(), "date_to": (last or first).isoformat()}


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def period_parse(start: str | None, end: str | None, today: date | None = None) -> Period:
    """The period of `from`/`to` query parameters: the last 30 days by default; a bad date is ignored,
    reversed dates are swapped and a span longer than a year is cut to its last 366 days."""
    today = today or timezone.localdate()
    last = _parse_day(end) or today
    first = _parse_day(start) or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    return Period(first, last)


def review_url(tenant_slug: str, **filters) -> str:
    """The review page listing the conversations a figure counts (chatbot.review.queries's filters, as query
    parameters: store, date_from, date_to, handed_off=yes|no, reason, intent, sentiment, csat, language...)."""
    query = {"store": tenant_slug, **{k: v for k, v in filters.items() if v not in (None, "")}}
    return f"{REVIEW_PATH}?{urlencode(query)}"


def conversation_url(conversation_id: int) -> str:
    """The review page of one conversation: its whole transcript with every message's labels and why."""
    return f"{REVIEW_PATH}{int(conversation_id)}/"


# --- SQL helpers ------------------------------------------------------------------------------


class EpochSeconds(Func):
    """Seconds in a PostgreSQL interval."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


def _postgres() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def page_reads():
    """The reads of one page, in one transaction (one snapshot) without PostgreSQL's JIT: the correlated
    subqueries' cost estimates trip jit_above_cost, and compiling them takes longer (~0.4 s on 200,000
    messages) than running them."""
    with transaction.atomic():
        if _postgres():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def conversations_in(tenant_id: int, period: Period) -> QuerySet[Conversation]:
    return Conversation.objects.filter(tenant_id=tenant_id, created_at__gte=period.since, created_at__lt=period.until)


def visitor_messages_in(tenant_id: int, period: Period) -> QuerySet[Message]:
    return Message.objects.filter(conversation__tenant_id=tenant_id, sender=SENDER.VISITOR,
                                  created_at__gte=period.since, created_at__lt=period.until)


def conversation_outcomes(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Each conversation annotated with what happened in it, as boolean columns:

    with_people (handed off to people or taken over by an agent), bot_answered (a bot reply
    that was not a fallback), rated_down / rated_up (a thumbs down by anyone / a visitor's thumbs up),
    returned (the same visitor started another conversation with one of its intents within 7 days of its end),
    bot_resolved (answered by the bot with none of: people, thumbs down, return) and confirmed (a visitor's
    thumbs up or CSAT 4-5).
    """
    pk = OuterRef("pk")
    own_intents = (Message.objects.filter(conversation_id=OuterRef(OuterRef("pk")), sender=SENDER.VISITOR)
                   .exclude(intent="").values("intent"))
    return (
        qs.annotate(
            return_deadline=ExpressionWrapper(
                Coalesce("resolved_at", "last_message_at", "created_at") + Value(RETURN_WINDOW),
                output_field=DateTimeField()),
        ).annotate(
            with_people=Exists(ConversationTransition.objects.filter(conversation=pk,
                                                                     to_status__in=[S.WAITING, S.HUMAN])),
            bot_answered=Exists(Message.objects.filter(conversation=pk, sender=SENDER.BOT)
                                .exclude(handoff_code=HandoffReason.FALLBACK)),
            rated_down=Exists(Feedback.objects.filter(message__conversation=pk, rating=Feedback.Rating.DOWN)),
            rated_up=Exists(Feedback.objects.filter(message__conversation=pk, rating=Feedback.Rating.UP,
                                                    source=Feedback.Source.VISITOR)),
            returned=Exists(Message.objects.filter(
                sender=SENDER.VISITOR, conversation__visitor_id=OuterRef("visitor_id"),
                conversation__created_at__gt=OuterRef("created_at"),
                conversation__created_at__lte=OuterRef("return_deadline"),
                intent__in=own_intents)),
        )
    )


BOT_RESOLVED = Q(bot_answered=True, with_people=False, rated_down=False, returned=False)
# Handed off at least once (the conversation keeps its latest hand-off's code), as the review page filters it.
HANDED_OFF = ~Q(handoff_code="")
CONFIRMED = Q(rated_up=True) | Q(csat__gte=4)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- the figures ------------------------------------------------------------------------------


def conversations_daily(tenant_id: int, period: Period) -> list[dict]:
    """Per day: conversations started, handed off, resolved by the bot (honestly) and confirmed by visitors."""
    rows = (
        conversation_outcomes(conversations_in(tenant_id, period))
        .annotate(day=TruncDate("created_at")).order_by().values("day")
        .annotate(
            total=Count("id"),
            handed_off=Count("id", filter=HANDED_OFF),
            bot_resolved=Count("id", filter=BOT_RESOLVED),
            confirmed=Count("id", filter=CONFIRMED),
        )
    )
    by_day = {r["day"]: r for r in rows}
    empty = {"total": 0, "handed_off": 0, "bot_resolved": 0, "confirmed": 0}
    return [{"day": d, **{k: by_day.get(d, empty)[k] for k in empty}} for d in period.days]


def resolution_summary(daily: list[dict]) -> dict:
    """Totals of the daily rows: the honest bot resolution rate beside the share visitors confirmed."""
    total = sum(r["total"] for r in daily)
    sums = {k: sum(r[k] for r in daily) for k in ("handed_off", "bot_resolved", "confirmed")}
    return {
        "conversations": total, **sums,
        "bot_resolution_rate": _rate(sums["bot_resolved"], total),
        "confirmed_rate": _rate(sums["confirmed"], total),
        "handoff_rate": _rate(sums["handed_off"], total),
    }


def handoff_reasons(tenant_id: int, period: Period) -> list[dict]:
    """The period's handed-off conversations by the code of their latest hand-off (`reason`, the review
    page's filter value, and its label), most frequent first."""
    labels = dict(HandoffReason.choices)
    rows = (
        conversations_in(tenant_id, period).filter(HANDED_OFF).order_by().values("handoff_code")
        .annotate(conversations=Count("id")).order_by("-conversations", "handoff_code")
    )
    return [{"reason": r["handoff_code"], "label": labels.get(r["handoff_code"], r["handoff_code"]),
             "conversations": r["conversations"]} for r in rows]


def _timings_annotated(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """First visitor message, first bot reply, first hand-off and first agent message (not a note)."""
    pk = OuterRef("pk")
    first = lambda rows, order: Subquery(rows.order_by(order).values("created_at")[:1])  # noqa: E731
    return qs.annotate(
        first_visitor_at=first(Message.objects.filter(conversation=pk, sender=SENDER.VISITOR), "seq"),
        first_bot_at=first(Message.objects.filter(conversation=pk, sender=SENDER.BOT), "seq"),
        first_agent_at=first(Message.objects.filter(conversation=pk, sender=SENDER.AGENT, private=False), "seq"),
        handed_off_at=first(ConversationTransition.objects.filter(conversation=pk, to_status=S.WAITING), "id"),
    )


TIMINGS = {
    # name: (start, end) columns of _timings_annotated; a pair where end comes before start does not count
    # (an agent who took a conversation over before the bot handed it off did not answer a hand-off)
    "bot_first_response": ("first_visitor_at", "first_bot_at"),
    "human_first_response": ("handed_off_at", "first_agent_at"),
    "resolution": ("created_at", "resolved_at"),
}


def rows_over(inner: QuerySet, statement: str, params: tuple = ()) -> list[dict]:
    """`WITH t AS (<inner>) <statement>`: aggregates over a query's rows, so that expressions annotated on each
    row (subqueries) are evaluated once, not once per aggregate that reads them. On PostgreSQL the CTE is
    MATERIALIZED, a fence: else it is inlined and each subplan runs once per reference."""
    sql, inner_params = inner.order_by().query.sql_with_params()
    fence = "MATERIALIZED " if _postgres() else ""
    with connection.cursor() as cursor:
        cursor.execute(f"WITH t AS {fence}({sql}) {statement}", (*inner_params, *params))
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


def response_times(tenant_id: int, period: Period) -> dict:
    """Median and 90th percentile, in seconds, of the bot's first reply (from the visitor's first message),
    of an agent's first reply (from the hand-off) and of the time to resolution (from the start)."""
    qs = _timings_annotated(conversations_in(tenant_id, period))
    if _postgres():
        inner = qs.annotate(**{name: EpochSeconds(F(end) - F(start)) for name, (start, end) in TIMINGS.items()})
        select = ", ".join(
            f"count(*) FILTER (WHERE {n} >= 0) AS {n}__n, "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {n}) FILTER (WHERE {n} >= 0) AS {n}__median, "
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {n}) FILTER (WHERE {n} >= 0) AS {n}__p90"
            for n in TIMINGS)
        [row] = rows_over(inner.values(*TIMINGS), f"SELECT {select} FROM t")
        return {n: {"n": row[f"{n}__n"], "median_s": _round(row[f"{n}__median"]), "p90_s": _round(row[f"{n}__p90"])}
                for n in TIMINGS}
    # SQLite (one-process mode): the same figures from the pairs of times.
    out = {}
    for name, (start, end) in TIMINGS.items():
        pairs = qs.filter(**{f"{start}__isnull": False, f"{end}__isnull": False}).values_list(start, end)
        seconds = sorted(s for s in ((_as_datetime(b) - _as_datetime(a)).total_seconds() for a, b in pairs)
                         if s >= 0)
        out[name] = {"n": len(seconds), "median_s": _round(_quantile(seconds, 0.5)),
                     "p90_s": _round(_quantile(seconds, 0.9))}
    return out


def _as_datetime(value) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _quantile(ordered: list[float], q: float) -> float | None:
    """percentile_cont's value: linear interpolation between the two closest ranks."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def csat_summary(tenant_id: int, period: Period) -> dict:
    """How many of the period's conversations were rated 1..5, and the average."""
    qs = conversations_in(tenant_id, period).filter(csat__isnull=False)
    counts = {r["csat"]: r["n"] for r in qs.order_by().values("csat").annotate(n=Count("id"))}
    average = qs.aggregate(avg=Avg("csat"))["avg"]
    return {"distribution": [{"score": s, "conversations": counts.get(s, 0)} for s in range(1, 6)],
            "rated": sum(counts.values()), "average": round(average, 2) if average is not None else None}


def sentiment_daily(tenant_id: int, period: Period) -> list[dict]:
    """Per day: visitor messages labelled negative, neutral and positive."""
    rows = (
        visitor_messages_in(tenant_id, period).annotate(day=TruncDate("created_at")).order_by().values("day")
        .annotate(**{s: Count("id", filter=Q(sentiment=s)) for s in SENTIMENTS})
    )
    by_day = {r["day"]: r for r in rows}
    return [{"day": d, **{s: by_day[d][s] if d in by_day else 0 for s in SENTIMENTS}} for d in period.days]


def top_values(tenant_id: int, period: Period, field: str, limit: int = TOP_LIMIT) -> list[dict]:
    """The most frequent labels (`intent` or `language`) of the period's visitor messages."""
    rows = (visitor_messages_in(tenant_id, period).exclude(**{field: ""}).order_by().values(field)
            .annotate(messages=Count("id")).order_by("-messages", field)[:limit])
    return [{"value": r[field], "messages": r["messages"]} for r in rows]


# The outcomes of a store action's calls (ActionCall.Outcome): the store answered (with the order, with "no such
# order / not hers", or asking for more) or it did not (no usable answer; or not called: too many misses).
ANSWERED = (ActionCall.Outcome.OK.value, ActionCall.Outcome.NOT_MATCHED.value, ActionCall.Outcome.NEEDS.value)
UNANSWERED = (ActionCall.Outcome.FAILED.value, ActionCall.Outcome.LIMITED.value)
OUTCOMES = ANSWERED + UNANSWERED


def actions_daily(tenant_id: int, period: Period) -> list[dict]:
    """Per day: the store actions called in visitors' conversations and their outcomes, with two rates:
    `success_rate` (ok / all calls: the visitor got her order) and `answered_rate` (ok, not_matched or needs / all:
    the order system answered, whatever the answer). failed and limited are the failures.

    Calls without a conversation are left out: the Order system page's test look-ups (and calls of conversations
    since erased, as the conversation figures leave those out)."""
    rows = (
        ActionCall.objects.filter(tenant_id=tenant_id, conversation__isnull=False, created_at__gte=period.since,
                                  created_at__lt=period.until)
        .annotate(day=TruncDate("created_at")).order_by().values("day")
        .annotate(calls=Count("id"), **{o: Count("id", filter=Q(outcome=o)) for o in OUTCOMES})
    )
    by_day = {r["day"]: r for r in rows}
    empty = {"calls": 0, **{o: 0 for o in OUTCOMES}}
    daily = []
    for day in period.days:
        row = {"day": day, **{k: by_day.get(day, empty)[k] for k in empty}}
        row["answered"] = sum(row[o] for o in ANSWERED)
        row["failures"] = sum(row[o] for o in UNANSWERED)
        row["success_rate"] = _rate(row["ok"], row["calls"])
        row["answered_rate"] = _rate(row["answered"], row["calls"])
        daily.append(row)
    return daily


def actions_summary(daily: list[dict]) -> dict:
    """Totals of actions_daily's rows, with the same two rates."""
    sums = {k: sum(r[k] for r in daily) for k in ("calls", "answered", "failures", *OUTCOMES)}
    return {**sums, "success_rate": _rate(sums["ok"], sums["calls"]),
            "answered_rate": _rate(sums["answered"], sums["calls"])}


# --- the page's data --------------------------------------------------------------------------


# The store actions chart's series: answers first (green, grey, blue), then failures (red, amber).
ACTION_SERIES = (
    ("ok", "OK", "ok"),
    ("not_matched", "Not matched", "grey"),
    ("needs", "Needs more", "brand"),
    ("failed", "Failed", "bad"),
    ("limited", "Limited", "warn"),
)


def insights(tenant, period: Period) -> dict:
    """Every figure of the insights page, with the review-page link behind each number and chart point."""
    slug, span = tenant.slug, period.as_filters()
    day_span = day_filters
    with page_reads():
        daily = conversations_daily(tenant.id, period)
        reasons = handoff_reasons(tenant.id, period)
        times = response_times(tenant.id, period)
        csat = csat_summary(tenant.id, period)
        sentiment = sentiment_daily(tenant.id, period)
        intents = top_values(tenant.id, period, "intent")
        languages = top_values(tenant.id, period, "language")
        actions = actions_daily(tenant.id, period)
    summary = resolution_summary(daily)
    labels = [d.isoformat() for d in period.days]

    links = {
        "conversations": review_url(slug, **span),
        "handed_off": review_url(slug, handed_off="yes", **span),
        "bot_resolution": review_url(slug, handed_off="no", **span),
        "confirmed": review_url(slug, csat="high", **span),
        "csat": review_url(slug, **span),
        "bot_first_response": review_url(slug, **span),
        "human_first_response": review_url(slug, handed_off="yes", **span),
        "resolution": review_url(slug, status=S.RESOLVED, **span),
    }
    charts = {
        "conversations": {
            "type": "bar", "stacked": True, "labels": labels,
            "datasets": [
                {"label": "Bot only", "color": "brand", "data": [r["total"] - r["handed_off"] for r in daily],
                 "links": [review_url(slug, handed_off="no", **day_span(r["day"])) for r in daily]},
                {"label": "Handed off", "color": "warn", "data": [r["handed_off"] for r in daily],
                 "links": [review_url(slug, handed_off="yes", **day_span(r["day"])) for r in daily]},
            ],
        },
        "resolution": {
            "type": "line", "percent": True, "labels": labels,
            "datasets": [
                {"label": "Resolved by the bot", "color": "brand",
                 "data": [_rate(r["bot_resolved"], r["total"]) for r in daily],
                 "links": [review_url(slug, handed_off="no", **day_span(r["day"])) for r in daily]},
                {"label": "Confirmed by the visitor", "color": "ok",
                 "data": [_rate(r["confirmed"], r["total"]) for r in daily],
                 "links": [review_url(slug, csat="high", **day_span(r["day"])) for r in daily]},
            ],
        },
        "reasons": {
            "type": "bar", "horizontal": True, "labels": [r["label"] for r in reasons],
            "datasets": [{"label": "Conversations handed off", "color": "warn",
                          "data": [r["conversations"] for r in reasons],
                          "links": [review_url(slug, handed_off="yes", reason=r["reason"], **span) for r in reasons]}],
        },
        "sentiment": {
            "type": "bar", "stacked": True, "labels": labels,
            "datasets": [
                {"label": s.capitalize(), "color": {"negative": "bad", "neutral": "grey", "positive": "ok"}[s],
                 "data": [r[s] for r in sentiment],
                 "links": [review_url(slug, sentiment=s, **day_span(r["day"])) for r in sentiment]}
                for s in SENTIMENTS
            ],
        },
        "csat": {
            "type": "bar", "labels": [f"{'★' * c['score']}" for c in csat["distribution"]],
            "datasets": [{"label": "Conversations", "color": "brand",
                          "data": [c["conversations"] for c in csat["distribution"]],
                          "links": [review_url(slug, csat=str(c["score"]), **span) for c in csat["distribution"]]}],
        },
        "intents": {
            "type": "bar", "horizontal": True, "labels": [r["value"] for r in intents],
            "datasets": [{"label": "Visitor messages", "color": "brand", "data": [r["messages"] for r in intents],
                          "links": [review_url(slug, intent=r["value"], **span) for r in intents]}],
        },
        "languages": {
            "type": "bar", "horizontal": True, "labels": [r["value"] for r in languages],
            "datasets": [{"label": "Visitor messages", "color": "brand", "data": [r["messages"] for r in languages],
                          "links": [review_url(slug, language=r["value"], **span) for r in languages]}],
        },
        "actions": {
            "type": "bar", "stacked": True, "labels": labels,
            "datasets": [
                {"label": label, "color": color, "data": [r[outcome] for r in actions],
                 "links": [review_url(slug, action_outcome=outcome, **day_span(r["day"])) for r in actions]}
                for outcome, label, color in ACTION_SERIES
            ],
        },
    }
    action_totals = actions_summary(actions)
    links.update({f"actions_{o}": review_url(slug, action_outcome=o, **span) for o in OUTCOMES})
    return {
        "tenant": slug, "period": period.as_query(), "summary": summary, "reasons": reasons, "times": times,
        "csat": csat, "intents": intents, "languages": languages, "links": links, "charts": charts,
        "actions": {**action_totals, "outcomes": [
            {"outcome": o, "label": label, "calls": action_totals[o], "answered": o in ANSWERED,
             "share": _rate(action_totals[o], action_totals["calls"]), "link": links[f"actions_{o}"]}
            for o, label, _ in ACTION_SERIES]},
    }


# --- the first-response target (chatbot.conversations.hours) ---------------------------------------------------


def first_response_targets(tenant_id: int, period: Period, now: datetime | None = None) -> dict:
    """The period's conversations whose latest hand-off had a first-response target (Conversation.first_response_due,
    the store's first_response_minutes counted in business hours), in one query: `met` (an agent's first visible
    reply by the due time), `breached` (late, or none and the due time has passed: a conversation closed or handed
    back without a reply counts), `running` (no reply yet, not due yet). `breach_rate`: breached / (met + breached)."""
    now = now or timezone.now()
    unanswered = Q(first_response_at__isnull=True)
    row = conversations_in(tenant_id, period).filter(first_response_due__isnull=False).aggregate(
        targets=Count("id"),
        met=Count("id", filter=Q(first_response_at__lte=F("first_response_due"))),
        breached=Count("id", filter=Q(first_response_at__gt=F("first_response_due"))
                       | (unanswered & Q(first_response_due__lt=now))),
        running=Count("id", filter=unanswered & Q(first_response_due__gte=now)),
    )
    return {**row, "breach_rate": _rate(row["breached"], row["met"] + row["breached"])}

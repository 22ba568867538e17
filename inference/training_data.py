"""The training data of one model: everything a store and its agents taught the bot, in one place.

    data = training_data(tenant, "intent")       # rows with a label (the intent)
    data = training_data(tenant, "responder")    # rows with a reply (label: the intent, when known)
    data = training_data(None, "sentiment")      # the global sentiment model: every tenant's corrections
    data.rows, data.sha256, data.counts          # sha256 is the model version's `data_hash`

Sources: knowledge entries (question -> answer), the tenant's training examples (seeded, imported,
agents'), agents' replies in conversations they took over (paired with the visitor message they answer),
agents' corrections of a bot reply (the right intent, reply or sentiment of the visitor message it
answered), accepted agent-assist suggestions (the reply the agent sent), bot replies rated up, and for
sentiment the SentimentExample base data. A reply rated down is never a target. Rows are deduplicated on
their normalised text and target; an agent's correction overrides older labels of the same text. Every
text, reply and context turn has its personal data replaced (nlu.pii) before anything is trained or
exported, and texts of the owner's frozen evaluation set are left out: a model is never judged on what
it learnt.
"""
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Q

from chatbot.learning.evalsets import text_key
from chatbot.models import (
    AssistSuggestion,
    EvalExample,
    Feedback,
    KnowledgeEntry,
    Message,
    ModelVersion,
    SentimentExample,
    Tenant,
    TrainingExample,
)
from chatbot.conversations.selectors import tenant_require
from nlu import SENTIMENT_LABELS
from nlu.pii import pii_scrub, pii_values

from inference.responder.inputs import MAX_TURNS

Kind = ModelVersion.Kind
SENDER = Message.Sender

# Where a row came from (TrainingData.counts is keyed by these).
KNOWLEDGE = "knowledge"
EXAMPLE = "example"
SENTIMENT_EXAMPLE = "sentiment_example"
AGENT_REPLY = "agent_reply"
ASSIST = "assist"
RATED_UP = "rated_up"
CORRECTED_INTENT = "corrected_intent"
CORRECTED_REPLY = "corrected_reply"
CORRECTED_SENTIMENT = "corrected_sentiment"
CORRECTIONS = frozenset({CORRECTED_INTENT, CORRECTED_REPLY, CORRECTED_SENTIMENT})
# When two sources give the same row, the first of these names it.
PRIORITY = (CORRECTED_REPLY, CORRECTED_INTENT, CORRECTED_SENTIMENT, ASSIST, AGENT_REPLY, RATED_UP, EXAMPLE,
            KNOWLEDGE, SENTIMENT_EXAMPLE)
# An agent's correction is one example against the many the model already learnt the other way.
CORRECTION_WEIGHT = 2.0


@dataclass(frozen=True)
class Row:
    """One training example. `label`: the intent (intent, responder) or the sentiment; `reply`: the
    responder's target; `history`: the (sender, text) turns before the message, oldest first, for
    rows that come from a conversation (responder only)."""

    text: str
    label: str = ""
    reply: str = ""
    source: str = ""
    weight: float = 1.0
    history: tuple[tuple[str, str], ...] = ()

    def as_list(self) -> list:
        return [self.text, self.label, self.reply, self.source, self.weight, [list(t) for t in self.history]]


@dataclass
class TrainingData:
    """The rows of one model's training, their hash and how many came from each source."""

    rows: list[Row]
    sha256: str
    counts: dict[str, int]
    kind: str = ""
    # Rows left out: "frozen" (in the evaluation set), "rated_down" (a target someone rated down),
    # "overridden" (an older label a correction replaced), "duplicate".
    excluded: dict[str, int] = field(default_factory=dict)


def rows_hash(rows: Iterable[Row]) -> str:
    """sha256 of the rows, in sorted order: the same data hashes the same whatever order it was read in."""
    lines = sorted(json.dumps(row.as_list(), ensure_ascii=False, separators=(",", ":")) for row in rows)
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Candidate:
    """A row before deduplication: raw texts (scrubbed later, once per distinct text) and when it was taught."""

    text: str
    label: str
    reply: str
    source: str
    at: datetime | None
    history: tuple[tuple[str, str], ...] = ()


# --- gathering: one query per source -----------------------------------------------------------


def _knowledge(tenant: Tenant) -> list[_Candidate]:
    rows = (KnowledgeEntry.objects.filter(tenant=tenant, is_active=True).order_by("id")
            .values_list("question", "answer", "updated_at"))
    return [_Candidate(q, "", a, KNOWLEDGE, at) for q, a, at in rows]


def _examples(tenant: Tenant) -> list[_Candidate]:
    rows = (TrainingExample.objects.filter(tenant=tenant).order_by("id")
            .values_list("text", "intent", "response", "updated_at"))
    return [_Candidate(t, i, r, EXAMPLE, at) for t, i, r, at in rows]


def _sentiment_examples() -> list[_Candidate]:
    rows = SentimentExample.objects.order_by("id").values_list("text", "label", "created_at")
    return [_Candidate(t, y, "", SENTIMENT_EXAMPLE, at) for t, y, at in rows]


def _feedback(tenant: Tenant | None) -> list[dict]:
    """Every rating and correction of a reply to a visitor message (one query, the messages joined)."""
    qs = Feedback.objects.filter(message__reply_to__isnull=False, message__reply_to__sender=SENDER.VISITOR)
    if tenant is not None:
        qs = qs.filter(message__conversation__tenant=tenant)
    return list(qs.order_by("id").values(
        "rating", "correction", "corrected_intent", "corrected_sentiment", "updated_at", "message_id",
        "message__text", "message__handoff_code", conversation_id=F("message__conversation_id"),
        asked_text=F("message__reply_to__text"),
        asked_intent=F("message__reply_to__intent"), asked_seq=F("message__reply_to__seq"),
    ))


def _assisted(tenant: Tenant) -> list[dict]:
    """Suggestions an agent sent as they were or edited: the visitor message and the reply she sent."""
    return list(AssistSuggestion.objects.filter(
        conversation__tenant=tenant, outcome__in=(AssistSuggestion.Outcome.SENT, AssistSuggestion.Outcome.EDITED),
        reply__isnull=False, reply__private=False,
    ).order_by("id").values("conversation_id", "updated_at", asked_text=F("message__text"),
                            asked_seq=F("message__seq"), asked_intent=F("message__intent"),
                            reply_text=F("reply__text")))


def _conversation_messages(tenant: Tenant) -> dict[int, list[tuple]]:
    """The visitor-visible messages (seq, sender, text, created_at) of every conversation an agent replied
    in or whose replies were rated or corrected, by conversation, in order: one query."""
    involved = (
        Q(conversation_id__in=Message.objects.filter(conversation__tenant=tenant, sender=SENDER.AGENT,
                                                      private=False).values("conversation_id"))
        | Q(conversation_id__in=Feedback.objects.filter(message__conversation__tenant=tenant)
            .values("message__conversation_id"))
    )
    rows = (Message.objects.filter(involved, private=False).order_by("conversation_id", "seq")
            .values_list("conversation_id", "seq", "sender", "text", "created_at"))
    out: dict[int, list[tuple]] = {}
    for conversation_id, seq, sender, text, at in rows:
        out.setdefault(conversation_id, []).append((seq, sender, text, at))
    return out


def _history(messages: list[tuple], seq: int) -> tuple[tuple[str, str], ...]:
    """The MAX_TURNS turns before `seq`, as the responder reads them at serving time
    (chatbot.conversations.selectors.conversation_recent_turns)."""
    earlier = [(sender, text) for s, sender, text, _ in messages if s < seq]
    return tuple(earlier[-MAX_TURNS:])


def _agent_replies(conversations: dict[int, list[tuple]]) -> list[_Candidate]:
    """Each agent reply paired with the visitor message it answers: the message just before it (system
    notices skipped); a second agent message in a row, or one after the bot, answers nothing new."""
    found = []
    for messages in conversations.values():
        for i, (seq, sender, text, at) in enumerate(messages):
            if sender != SENDER.AGENT:
                continue
            j = i - 1
            while j >= 0 and messages[j][1] == SENDER.SYSTEM:
                j -= 1
            if j >= 0 and messages[j][1] == SENDER.VISITOR:
                asked_seq, _, asked, _ = messages[j]
                found.append(_Candidate(asked, "", text, AGENT_REPLY, at, _history(messages, asked_seq)))
    return found


# --- assembling -----------------------------------------------------------------------------


def _gather(tenant: Tenant | None, kind: str) -> tuple[list[_Candidate], set[tuple[str, str]]]:
    """The candidates of `kind` and, for responders, the (visitor message, reply) pairs rated down."""
    feedback = _feedback(tenant)
    rated_down: set[tuple[str, str]] = set()
    if kind == Kind.SENTIMENT:
        found = _sentiment_examples()
        found += [_Candidate(f["asked_text"], f["corrected_sentiment"], "", CORRECTED_SENTIMENT, f["updated_at"])
                  for f in feedback if f["corrected_sentiment"]]
        return found, rated_down
    if kind == Kind.INTENT:
        found = [c for c in _examples(tenant) if c.label]
        found += [_Candidate(f["asked_text"], f["corrected_intent"], "", CORRECTED_INTENT, f["updated_at"])
                  for f in feedback if f["corrected_intent"]]
        return found, rated_down

    conversations = _conversation_messages(tenant)

    def history(f: dict) -> tuple[tuple[str, str], ...]:
        return _history(conversations.get(f["conversation_id"], []), f["asked_seq"])

    found = _knowledge(tenant) + [c for c in _examples(tenant) if c.reply]
    found += _agent_replies(conversations)
    for s in _assisted(tenant):
        found.append(_Candidate(s["asked_text"], s["asked_intent"], s["reply_text"], ASSIST, s["updated_at"],
                                history(s)))
    down = {f["message_id"] for f in feedback if f["rating"] == Feedback.Rating.DOWN}
    corrected = {f["message_id"] for f in feedback if f["correction"]}
    for f in feedback:
        if f["message_id"] in down:
            rated_down.add((f["asked_text"], f["message__text"]))
        if f["correction"]:
            found.append(_Candidate(f["asked_text"], f["corrected_intent"] or f["asked_intent"], f["correction"],
                                    CORRECTED_REPLY, f["updated_at"], history(f)))
        elif (f["rating"] == Feedback.Rating.UP and f["message_id"] not in down | corrected
              and not f["message__handoff_code"]):
            found.append(_Candidate(f["asked_text"], f["asked_intent"], f["message__text"], RATED_UP,
                                    f["updated_at"], history(f)))
    return found, rated_down


def _frozen_texts(tenant: Tenant | None, kind: str) -> list[str]:
    """The owner's frozen evaluation texts; for the one global sentiment model, every owner's."""
    qs = EvalExample.objects.filter(kind=kind, split=EvalExample.Split.FROZEN)
    if kind != Kind.SENTIMENT:
        qs = qs.filter(tenant=tenant)
    return list(qs.values_list("text", flat=True))


def _usable(kind: str, row: Row) -> bool:
    if not row.text:
        return False
    if kind == Kind.INTENT:
        return bool(row.label)
    if kind == Kind.SENTIMENT:
        return row.label in SENTIMENT_LABELS
    return bool(row.reply)


def training_data(tenant: Tenant | str | None, kind: str) -> TrainingData:
    """The deduplicated, scrubbed training rows of `tenant`'s `kind` model, the frozen set left out.
    Sentiment with tenant None is the global model (every tenant's corrections and the base data);
    with a tenant, that tenant's corrections and the base data."""
    if kind not in Kind.values:
        raise ValueError(f"unknown model kind {kind!r}; use one of {', '.join(Kind.values)}")
    if isinstance(tenant, str):
        tenant = tenant_require(tenant)
    if tenant is None and kind != Kind.SENTIMENT:
        raise ValueError(f"a {kind} model belongs to a tenant; name one")
    candidates, rated_down = _gather(tenant, kind)
    frozen_texts = _frozen_texts(tenant, kind)
    # The store's own contact details and sample order number (its knowledge answers) are not personal data.
    keep = pii_values(c.reply for c in candidates if c.source == KNOWLEDGE)
    scrubbed: dict[str, str] = {}

    def scrub(text: str) -> str:
        if text not in scrubbed:
            scrubbed[text] = " ".join(pii_scrub(text, keep).split())
        return scrubbed[text]

    # A frozen text is kept out as written and as scrubbed ("where is NW-1" rules out "where is [order]").
    frozen = {text_key(t) for t in frozen_texts} | {text_key(scrub(t)) for t in frozen_texts}
    down_keys = {(text_key(t), text_key(r)) for t, r in rated_down}
    down_keys |= {(text_key(scrub(t)), text_key(scrub(r))) for t, r in rated_down}
    excluded: Counter = Counter()
    rows: list[tuple[_Candidate, Row]] = []
    for c in candidates:
        text, reply = scrub(c.text or ""), scrub(c.reply or "")
        label = (c.label or "").strip()
        if kind == Kind.SENTIMENT:
            label = label.lower()
        row = Row(text, label, reply, c.source, CORRECTION_WEIGHT if c.source in CORRECTIONS else 1.0,
                  tuple((sender, scrub(t)) for sender, t in c.history if t.strip()))
        if not _usable(kind, row):
            continue
        if text_key(c.text) in frozen or text_key(text) in frozen:
            excluded["frozen"] += 1
            continue
        if down_keys and ((text_key(c.text), text_key(c.reply)) in down_keys
                          or (text_key(text), text_key(reply)) in down_keys):
            excluded["rated_down"] += 1
            continue
        rows.append((c, row))
    kept = _deduplicate(kind, rows, excluded)
    counts = dict(sorted(Counter(row.source for row in kept).items()))
    return TrainingData(rows=kept, kind=kind, sha256=rows_hash(kept), counts=counts, excluded=dict(excluded))


def _target(kind: str, row: Row) -> str:
    return text_key(row.reply) if kind == Kind.RESPONDER else row.label


def _deduplicate(kind: str, rows: list[tuple[_Candidate, Row]], excluded: Counter) -> list[Row]:
    """One row per (text, target); the newest correction of a text overrides the older rows of that text
    that say otherwise (a newer row stays: the store may have relabelled since)."""
    newest_fix: dict[str, tuple[_Candidate, Row]] = {}
    for c, row in rows:
        if c.source in CORRECTIONS:
            key = text_key(row.text)
            best = newest_fix.get(key)
            if best is None or _later(c.at, best[0].at):
                newest_fix[key] = (c, row)
    rank = {source: i for i, source in enumerate(PRIORITY)}
    chosen: dict[tuple[str, str], Row] = {}
    for c, row in rows:
        key = text_key(row.text)
        fix = newest_fix.get(key)
        if fix is not None and _target(kind, row) != _target(kind, fix[1]) and not _later(c.at, fix[0].at):
            excluded["overridden"] += 1
            continue
        dedup_key = (key, _target(kind, row))
        held = chosen.get(dedup_key)
        if held is None:
            chosen[dedup_key] = row
            continue
        excluded["duplicate"] += 1
        if rank.get(row.source, len(rank)) < rank.get(held.source, len(rank)):
            held, row = row, held
        # The row that names the pair keeps the larger weight and the longer context of the two.
        chosen[dedup_key] = Row(held.text, held.label or row.label, held.reply, held.source,
                                max(held.weight, row.weight), held.history or row.history)
    return sorted(chosen.values(), key=lambda r: (text_key(r.text), r.label, r.reply, r.source))


def _later(a: datetime | None, b: datetime | None) -> bool:
    """a strictly after b (a missing time is the oldest)."""
    if a is None:
        return False
    return b is None or a > b

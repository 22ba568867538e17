"""The evaluation sets a candidate model is judged on (inference.gate): per tenant and model kind, a
frozen set drawn once from its labelled data and never trained on, and a corrections set that grows
with every agent correction.

    frozen_ensure(tenant, "intent")      # draws it the first time, returns it every time after
    correction_add(feedback_id)          # subscribed to FEEDBACK_RECORDED (chatbot.apps)
    frozen_set(tenant, "intent"), corrections_set(tenant, "intent"), frozen_keys(tenant, "intent")

Sentiment is one global model: its sets have tenant None.
"""
import logging
import random
import unicodedata
import zlib
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from chatbot.models import EvalExample, Feedback, KnowledgeEntry, ModelVersion, SentimentExample, Tenant, TrainingExample

log = logging.getLogger(__name__)

Kind = ModelVersion.Kind
Split = EvalExample.Split
MIN_PER_LABEL = 3  # a label with fewer examples keeps them all for training
KNOWLEDGE_LABEL = "knowledge"  # responders: the stratum of knowledge entries without an intent


@dataclass(frozen=True)
class Labelled:
    text: str
    label: str
    reply: str = ""


def text_key(text: str) -> str:
    """How texts are compared, here and by the training data builder that keeps the frozen set out of
    training: Unicode compatibility forms, case, spacing and the punctuation around the text ignored
    ("Where's my order?" = "where's my order")."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return text.strip(" .,;:!?¡¿…\"'()")


def _owner_id(tenant: Tenant | int | None) -> int | None:
    return tenant.pk if isinstance(tenant, Tenant) else tenant


def labelled_examples(tenant: Tenant | int | None, kind: str) -> list[Labelled]:
    """The owner's labelled examples of `kind`, one per text (the first seen), in a stable order."""
    tenant_id = _owner_id(tenant)
    if kind == Kind.INTENT:
        rows = [Labelled(t, i, r) for t, i, r in TrainingExample.objects.filter(tenant_id=tenant_id)
                .exclude(intent="").order_by("id").values_list("text", "intent", "response")]
    elif kind == Kind.RESPONDER:
        replies = TrainingExample.objects.filter(tenant_id=tenant_id).exclude(response="").order_by("id")
        rows = [Labelled(t, i or KNOWLEDGE_LABEL, r) for t, i, r in replies.values_list("text", "intent", "response")]
        entries = KnowledgeEntry.objects.filter(tenant_id=tenant_id, is_active=True).order_by("id")
        rows += [Labelled(q, c or KNOWLEDGE_LABEL, a)
                 for q, a, c in entries.values_list("question", "answer", "category")]
    elif kind == Kind.SENTIMENT:
        rows = [Labelled(t, y) for t, y in SentimentExample.objects.order_by("id").values_list("text", "label")]
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    seen, unique = set(), []
    for row in rows:
        key = text_key(row.text)
        if key and key not in seen and (kind != Kind.RESPONDER or row.reply.strip()):
            seen.add(key)
            unique.append(row)
    return unique


def frozen_draw(rows: list[Labelled], seed: int, fraction: float | None = None,
                cap: int | None = None) -> list[Labelled]:
    """A stratified sample: `fraction` of each label with MIN_PER_LABEL+ examples (at least one, and
    at least two left for training), at most `cap` in all, shrunk evenly across labels."""
    fraction = settings.EVAL_FROZEN_FRACTION if fraction is None else fraction
    cap = settings.EVAL_FROZEN_MAX if cap is None else cap
    by_label: dict[str, list[Labelled]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    rng = random.Random(seed)
    wanted: dict[str, int] = {}
    for label in sorted(by_label):
        n = len(by_label[label])
        if n >= MIN_PER_LABEL:
            wanted[label] = min(max(1, round(n * fraction)), n - 2)
    total = sum(wanted.values())
    if cap and total > cap:
        scale = cap / total
        wanted = {label: max(1, int(k * scale)) for label, k in wanted.items()}
        while sum(wanted.values()) > cap:  # more labels than the cap: the largest strata give way first
            label = max(sorted(wanted), key=lambda lab: (wanted[lab], len(by_label[lab])))
            wanted[label] -= 1
            if wanted[label] == 0:
                del wanted[label]
    drawn = []
    for label in sorted(wanted):
        pool = by_label[label][:]
        rng.shuffle(pool)
        drawn += pool[:wanted[label]]
    return drawn


def _lock(kind: str, tenant_id: int | None) -> None:
    """One drawing per owner and kind at a time (a transaction-scoped PostgreSQL advisory lock)."""
    if connection.vendor == "postgresql":
        key = zlib.crc32(f"evalset:{kind}".encode()) - 2**31
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [key, tenant_id or 0])


def frozen_ensure(tenant: Tenant | int | None, kind: str) -> list[EvalExample]:
    """The owner's frozen set of `kind`, drawn from its labelled examples the first time it is asked
    for (deterministically) and never redrawn, so every candidate is judged on the same examples."""
    tenant_id = _owner_id(tenant)
    with transaction.atomic():
        _lock(kind, tenant_id)
        existing = frozen_set(tenant_id, kind)
        if existing:
            return existing
        # Seeded by the store's slug, not its row id: the same store's data draws the same set in any database.
        slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first() or ""
        seed = zlib.crc32(f"frozen:{kind}:{slug}".encode())
        drawn = frozen_draw(labelled_examples(tenant_id, kind), seed)
        EvalExample.objects.bulk_create([
            EvalExample(tenant_id=tenant_id, kind=kind, split=Split.FROZEN, text=row.text,
                        label="" if row.label == KNOWLEDGE_LABEL else row.label, reply=row.reply)
            for row in drawn
        ])
        if drawn:
            log.info("drew the frozen %s set of tenant %s: %d examples", kind, tenant_id, len(drawn))
        return frozen_set(tenant_id, kind)


def correction_add(feedback_id: int) -> list[EvalExample]:
    """Put an agent's corrections of one bot reply into the corrections sets: the visitor's message with
    the right intent, the right reply, the right sentiment. A correction taken back leaves the set."""
    feedback = (Feedback.objects.select_related("message__reply_to", "message__conversation")
                .filter(pk=feedback_id, source=Feedback.Source.AGENT).first())
    if feedback is None or feedback.message.reply_to is None:
        return []
    asked = feedback.message.reply_to
    tenant_id = feedback.message.conversation.tenant_id
    wanted = {
        Kind.INTENT: (tenant_id, feedback.corrected_intent, ""),
        Kind.RESPONDER: (tenant_id, feedback.corrected_intent or asked.intent, feedback.correction),
        Kind.SENTIMENT: (None, feedback.corrected_sentiment, ""),
    }
    added = []
    with transaction.atomic():
        for kind, (owner, label, reply) in wanted.items():
            corrected = reply if kind == Kind.RESPONDER else label
            existing = EvalExample.objects.filter(feedback=feedback, kind=kind, split=Split.CORRECTIONS)
            if not corrected.strip() or not asked.text.strip():
                existing.delete()
                continue
            example, _ = EvalExample.objects.update_or_create(
                feedback=feedback, kind=kind, split=Split.CORRECTIONS,
                defaults={"tenant_id": owner, "text": asked.text, "label": label, "reply": reply},
            )
            added.append(example)
    return added


def on_feedback_recorded(event: dict) -> None:
    """FEEDBACK_RECORDED subscriber: every correction grows the corrections sets at once."""
    feedback = event.get("feedback") or {}
    if feedback.get("source") == Feedback.Source.AGENT and feedback.get("id"):
        correction_add(feedback["id"])


# --- selectors ------------------------------------------------------------------------


def frozen_set(tenant: Tenant | int | None, kind: str) -> list[EvalExample]:
    return list(EvalExample.objects.filter(tenant_id=_owner_id(tenant), kind=kind, split=Split.FROZEN).order_by("id"))


def frozen_keys(tenant: Tenant | int | None, kind: str) -> set[str]:
    """`text_key`s of the frozen set: what the training data builder leaves out."""
    texts = EvalExample.objects.filter(tenant_id=_owner_id(tenant), kind=kind, split=Split.FROZEN)
    return {text_key(t) for t in texts.values_list("text", flat=True)}


def corrections_set(tenant: Tenant | int | None, kind: str) -> list[EvalExample]:
    """The corrections set, one example per text: the newest correction of a message wins."""
    rows = EvalExample.objects.filter(tenant_id=_owner_id(tenant), kind=kind, split=Split.CORRECTIONS).order_by("-id")
    seen, result = set(), []
    for row in rows:
        key = text_key(row.text)
        if key not in seen:
            seen.add(key)
            result.append(row)
    return result[::-1]


def eval_counts(tenant: Tenant | int | None, kind: str) -> dict[str, int]:
    """How big each set is, for the console."""
    return {"frozen": len(frozen_set(tenant, kind)), "corrections": len(corrections_set(tenant, kind))}

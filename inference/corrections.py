"""Corrections count at once: an agent's fix of a bot reply teaches the bot before any retraining.

When an agent corrects the intent of a message the bot answered (Feedback.corrected_intent) or writes the
right reply (Feedback.correction), the corrected visitor message joins the tenant's correction memory: the
messages embedded with the retrieval sentence encoder. A visitor message at least
settings.CORRECTION_MEMORY_MIN_SCORE (cosine) from one of them gets its corrected intent, and its reply
(inference.answer), ahead of the knowledge base, the responder and the intents' own replies.

A reply that names an order number, e-mail, link or a name of its own message belongs to that message
(intent_replies.reply_is_generic): it answers only the same text again. For the same text the newest
correction wins.

The memory is rebuilt when the tenant's corrections change. Which corrections the process has is known
without a query per message: the `feedback_recorded` event forgets it (here, and through
inference.model_watch in every other process), and it is read again after MODEL_POLL_SECONDS anyway.
"""
import threading
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Q

from chatbot.events import FEEDBACK_RECORDED
from chatbot.models import Feedback, Message
from inference import model_watch, policy, registry
from inference.intent_replies import reply_is_generic
from inference.retrieval import SentenceEncoder, retrieval_text, sentence_encoder

VERSION = "correction-memory"  # model_version of the replies it writes, label version of the intents it sets


@dataclass(frozen=True)
class Correction:
    feedback_id: int
    message_id: int  # the corrected visitor message
    text: str
    intent: str  # "" when the agent corrected the reply only
    reply: str  # "" when the agent corrected the intent only
    generic: bool  # the reply fits another message (names nothing of its own message)
    language: str = ""  # the corrected message's (Message.language; "" when it had no clear one)


@dataclass(frozen=True)
class CorrectionMatch:
    correction: Correction
    score: float
    reply: str  # the correction's reply where it may answer this message, else ""

    @property
    def intent(self) -> str:
        return self.correction.intent

    def as_grounding(self) -> dict:
        c = self.correction
        return {"correction": c.feedback_id, "message": c.message_id, "text": c.text, "intent": c.intent,
                "score": round(self.score, 4)}


def _exact_key(text: str) -> str:
    """A message as typed, but for case and spacing: what counts as the corrected message itself."""
    return " ".join(text.split()).casefold()


def same_text(a: str, b: str) -> bool:
    return _exact_key(a) == _exact_key(b)


class CorrectionMemory:
    """A tenant's corrected visitor messages (newest correction per text) with their embeddings."""

    def __init__(self, corrections: list[Correction], encoder: SentenceEncoder):
        newest: dict[str, Correction] = {}
        for correction in corrections:  # oldest first: a newer one replaces it
            newest[_exact_key(correction.text)] = correction
        self.items = list(newest.values())
        self.encoder = encoder
        self.vectors = encoder.encode([retrieval_text(c.text) for c in self.items]) if self.items else None

    def __len__(self) -> int:
        return len(self.items)

    def match(self, text: str, min_score: float) -> CorrectionMatch | None:
        """The correction of the message closest to `text`, when at least `min_score` close."""
        if not self.items:
            return None
        scores = self.encoder.scores(self.vectors, text)
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < min_score:
            return None
        correction = self.items[best]
        reply = correction.reply if correction.reply and (correction.generic or same_text(correction.text, text)) \
            else ""
        if not reply and not correction.intent:
            return None  # a specific reply for another message, and no intent to lend
        return CorrectionMatch(correction, score, reply)


# --- the tenant's corrections (queries) ----------------------------------------------------------------


def _corrections_of(tenant_id: int):
    return Feedback.objects.filter(
        message__conversation__tenant_id=tenant_id, message__sender=Message.Sender.BOT,
        message__reply_to__isnull=False,
    ).filter(~Q(correction="") | ~Q(corrected_intent=""))


def corrections_for_tenant(tenant_id: int) -> list[Correction]:
    """The tenant's corrections of bot replies, oldest first."""
    rows = _corrections_of(tenant_id).order_by("updated_at", "id").values_list(
        "id", "message__reply_to_id", "message__reply_to__text", "corrected_intent", "correction",
        "message__reply_to__language")
    return [
        Correction(pk, message_id, text, intent.strip(), reply.strip(), reply_is_generic(text, reply), language)
        for pk, message_id, text, intent, reply, language in rows if text.strip()
    ]


def corrections_version(tenant_id: int) -> tuple:
    """(count, newest updated_at, newest id) of the tenant's corrections: changes with any of them."""
    agg = _corrections_of(tenant_id).aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    return agg["n"], agg["last"], agg["top"]


# --- the per-process memory, known without a query per message -----------------------------------------

_lock = threading.Lock()
_stamps: dict[int, tuple[tuple, float]] = {}
_generation = 0


def memory_forget(tenant_id: int | None = None) -> None:
    """The tenant's corrections changed (or, None: anything may have): read them again on the next message."""
    global _generation
    with _lock:
        _generation += 1
        if tenant_id is None:
            _stamps.clear()
        else:
            _stamps.pop(tenant_id, None)


def _version(tenant_id: int) -> tuple:
    entry = _stamps.get(tenant_id)
    now = time.monotonic()
    if entry is not None and now - entry[1] < settings.MODEL_POLL_SECONDS:
        return entry[0]
    model_watch.ensure_listening()  # what forgets the stamp in this process when another one records
    generation = _generation
    stamp = corrections_version(tenant_id)
    with _lock:
        if generation == _generation:
            _stamps[tenant_id] = (stamp, now)
    return stamp


def correction_memory(tenant_id: int) -> CorrectionMemory:
    """The tenant's memory, rebuilt when its corrections changed."""
    return registry.get_versioned(
        "corrections", tenant_id, _version(tenant_id),
        lambda: CorrectionMemory(corrections_for_tenant(tenant_id), sentence_encoder(tenant_id)))


def correction_match(tenant_id: int, text: str) -> CorrectionMatch | None:
    """What an agent's correction says about `text`: its intent, and its reply where it may answer it."""
    return correction_memory(tenant_id).match(text, settings.CORRECTION_MEMORY_MIN_SCORE)


def reply_fits(correction: Correction, language: str) -> bool:
    """Whether the correction's reply may answer a message in `language`: the same language, or either
    one unclear (a short message, or a correction written before languages were detected)."""
    return not correction.language or not language or correction.language == language


def decision_with(decision: policy.Decision, match: CorrectionMatch | None) -> policy.Decision:
    """The policy's decision once an agent's reply for this question is known: it answers instead of a
    fallback (or the hand-off after fallbacks) and of a low-confidence hand-off. The rules that give a
    message to people first (a request for a person, an unserved language, a negative streak, out of
    scope) and the complaint rule stand."""
    if match is None or not match.reply:
        return decision
    overridable = decision.action == "fallback" or (
        decision.action == "answer" and decision.details.get("source") != "complaint"
    ) or (decision.hands_off and ("fallbacks" in decision.details or "intent_confidence" in decision.details))
    if not overridable:
        return decision
    return policy.Decision("answer", "an agent's correction of this question",
                           {"source": "correction", "score": round(match.score, 4)})


model_watch.handle(FEEDBACK_RECORDED, lambda payload: memory_forget(payload.get("tenant")))
model_watch.handle(model_watch.RESYNC, lambda payload: memory_forget())

"""The hand-off policy, in one place: when the bot answers, falls back, answers a complaint with an
apology and the offer of a person, or hands the conversation to humans instead of guessing."""
import re
from dataclasses import dataclass, field

from chatbot.models import HandoffReason
from nlu import OUT_OF_SCOPE

HUMAN_INTENT = "human_agent"
COMPLAINT_INTENT = "complaint"
# How sure the sentiment model must be that a message is negative for the complaint rule to apologise.
STRONG_NEGATIVE_CONFIDENCE = 0.8
# How much closer to an intent's example than to the best knowledge entry a message must be for the
# intent's own reply to answer instead of the entry (intent_reply_answers).
INTENT_REPLY_MARGIN = 0.2

_HUMAN_REQUEST = re.compile(
    r"\b((an?|real|actual|some) human(?![-\w])|human (agent|being)|real person|live (agent|person|chat)|(an?|the|your) agent|representative|operator|"
    r"(speak|talk|chat) (to|with) (a |an |some |the )?(person|someone|somebody|human|manager|supervisor))\b",
    re.IGNORECASE,
)


@dataclass
class Labels:
    """What the classifiers said (inference.labelling.MessageLabels has the same fields)."""

    intent: str = ""
    intent_confidence: float | None = None
    sentiment: str = ""
    sentiment_confidence: float | None = None


@dataclass
class Decision:
    action: str  # "answer" | "fallback" | "hand_off"
    reason: str = ""
    details: dict = field(default_factory=dict)  # "source": "intent_reply" | "complaint" when not the usual answer
    code: str = ""  # a HandoffReason for a hand-off or a fallback; `reason` is its detail in words

    @property
    def hands_off(self) -> bool:
        return self.action == "hand_off"


def asks_for_human(text: str) -> bool:
    return bool(_HUMAN_REQUEST.search(text))


def knowledge_answers(tenant, retrieval_score: float | None) -> bool:
    """Whether the best knowledge entry is close enough to be the answer."""
    return retrieval_score is not None and retrieval_score >= tenant.min_retrieval_score


def intent_reply_answers(tenant, retrieval_score: float | None, intent_reply_score: float | None) -> bool:
    """Whether the intent's own reply answers: close enough to its example, and no knowledge entry close
    enough, or the message much closer to the example than to the entry. On the multilingual base a bare
    "¡Gracias!" is 0.45 from a knowledge entry but 0.9 from the example "muchas gracias"."""
    if intent_reply_score is None or intent_reply_score < tenant.min_intent_reply_score:
        return False
    return not knowledge_answers(tenant, retrieval_score) or intent_reply_score >= retrieval_score + INTENT_REPLY_MARGIN


def negative_streak(sentiment: str, earlier_sentiments: list[str]) -> int:
    """Negative turns in a row ending with this one (0 when this one is not negative); earlier ones newest last."""
    if sentiment != "negative":
        return 0
    streak = 1
    for earlier in reversed(earlier_sentiments):
        if earlier != "negative":
            break
        streak += 1
    return streak


def strong_complaint(tenant, labels: Labels, streak: int) -> bool:
    """A confidently negative message that complains, or that continues a negative streak (two turns or
    more) still short of the hand-off: it gets an apology and the offer of a person, not a bare FAQ."""
    confident = labels.sentiment_confidence is not None and labels.sentiment_confidence >= STRONG_NEGATIVE_CONFIDENCE
    if labels.sentiment != "negative" or not confident:
        return False
    return labels.intent == COMPLAINT_INTENT or 2 <= streak < max(1, tenant.negative_turns_to_handoff)


def unserved_language(tenant, language: str) -> bool:
    """Whether `language` is one the store's bot does not answer in (a store listing none answers in all)."""
    served = tenant.languages or []
    return bool(language) and bool(served) and language not in served


def fallbacks_hand_off(fallbacks_to_handoff: int, fallbacks_in_a_row: int) -> bool:
    """Whether this many fallback replies in a row (this one included) should go to a person (limit 0: never)."""
    return fallbacks_to_handoff > 0 and fallbacks_in_a_row >= fallbacks_to_handoff


def decide(
    tenant,
    text: str,
    labels: Labels,
    retrieval_score: float | None,
    earlier_sentiments: list[str],
    responder_score: float | None = None,
    intent_reply_score: float | None = None,
    fallbacks_before: int = 0,
    language: str = "",
) -> Decision:
    """Apply the tenant's thresholds; `earlier_sentiments` are the visitor's previous turns, newest last.

    `intent_reply_score`: how close the message is to the nearest example of its intent that has a generic
    reply (None: no such example); that reply answers when no knowledge entry is close enough, or when the
    message is much closer to the example than to the entry (intent_reply_answers).
    `fallbacks_before`: the bot's fallback replies in a row just before this message.
    `language`: the message's detected language ("" when unclear); one the store's bot does not answer in
    goes to people (who may speak it) before anything else, since the labels of such a message mean little.
    """
    if unserved_language(tenant, language):
        return Decision("hand_off", f"language: {language}", {"language": language}, HandoffReason.LANGUAGE)
    if labels.intent == HUMAN_INTENT or asks_for_human(text):
        return Decision("hand_off", "visitor asked for a person", code=HandoffReason.ASKED_FOR_PERSON)
    streak = negative_streak(labels.sentiment, earlier_sentiments)
    if streak and streak >= max(1, tenant.negative_turns_to_handoff):
        return Decision("hand_off", f"negative sentiment for {streak} turns", {"streak": streak},
                        HandoffReason.NEGATIVE_SENTIMENT)
    if labels.intent == OUT_OF_SCOPE:
        return Decision("hand_off", "out-of-scope request", code=HandoffReason.OUT_OF_SCOPE)
    if labels.intent_confidence is not None and labels.intent_confidence < tenant.min_intent_confidence:
        return Decision(
            "hand_off", f"low intent confidence ({labels.intent_confidence:.2f})",
            {"intent_confidence": labels.intent_confidence}, HandoffReason.LOW_CONFIDENCE,
        )
    if strong_complaint(tenant, labels, streak):
        return Decision(
            "answer", f"strong complaint (negative {labels.sentiment_confidence:.2f})",
            {"source": "complaint", "streak": streak},
        )
    if responder_score is not None and responder_score < tenant.min_responder_score:
        return Decision("hand_off", f"low responder score ({responder_score:.2f})", {"score": responder_score},
                        HandoffReason.LOW_RESPONDER_SCORE)
    # Until a responder writes the reply, the retrieved answer is the reply, or the intent's own reply.
    if responder_score is None and intent_reply_answers(tenant, retrieval_score, intent_reply_score):
        return Decision("answer", "the intent's own reply", {"source": "intent_reply"})
    if responder_score is None and not knowledge_answers(tenant, retrieval_score):
        fallbacks = fallbacks_before + 1
        if fallbacks_hand_off(tenant.fallbacks_to_handoff, fallbacks):
            return Decision("hand_off", f"{fallbacks} fallback{'s' if fallbacks > 1 else ''} in a row",
                            {"fallbacks": fallbacks}, HandoffReason.REPEATED_FALLBACK)
        return Decision("fallback", "no knowledge entry close enough", code=HandoffReason.FALLBACK)
    return Decision("answer")

"""Replies from the tenant's own labelled pairs: the answer for a confidently labelled message
that no knowledge entry covers ("thanks!", a complaint), before a responder is trained.

Only generic replies are candidates: one that names an order number, email, link or phone,
or repeats a name from its own message ("Standard shipping to Ohio takes..."), belongs to
that message. A reply is used when the visitor's message is close to the example it answers
(`Tenant.min_intent_reply_score`), within the predicted intent.
"""
import re
from dataclasses import dataclass

import numpy as np

from chatbot.conversations import selectors

from inference import registry
from inference.responder.placeholders import PATTERNS
from inference.retrieval import SentenceEncoder, encoder_version, languages_of, retrieval_text, sentence_encoder

VERSION = "intent-reply-minilm"


@dataclass
class IntentReply:
    example_id: int
    intent: str
    message: str
    reply: str
    score: float
    language: str = ""  # the pair's (TrainingExample.language; "": the store's main one)

    def as_grounding(self) -> dict:
        return {"example": self.example_id, "intent": self.intent, "message": self.message,
                "score": round(self.score, 4)}


_WORD = re.compile(r"[\w'-]+")


def message_names(message: str) -> set[str]:
    """Capitalised words that do not start a sentence: the places, products and people a message names."""
    names, initial = set(), True
    for match in re.finditer(r"[\w'-]+|[.!?]", message):
        token = match.group()
        if token in ".!?":
            initial = True
            continue
        if not initial and token[0].isupper() and token not in ("I", "I'm", "I've", "I'd", "I'll"):
            names.add(token.lower())
        initial = False
    return names


def reply_is_generic(message: str, reply: str) -> bool:
    """True when the reply names no value (order number, email, link, phone) and repeats no name of its
    own message: it would fit another message of the same intent."""
    if any(pattern.search(reply) for pattern in PATTERNS.values()):
        return False
    return not message_names(message) & {w.lower() for w in _WORD.findall(reply)}


class IntentReplyIndex:
    """A tenant's generic (message, reply) pairs by intent, with the messages' embeddings."""

    def __init__(self, pairs: list[tuple[int, str, str, str, str]], encoder: SentenceEncoder):
        self.pairs = [p for p in pairs if reply_is_generic(p[2], p[3])]
        self.encoder = encoder
        self.vectors = encoder.encode([retrieval_text(p[2]) for p in self.pairs]) if self.pairs else None

    def best(self, intent: str, text: str, languages: set[str] | None = None) -> IntentReply | None:
        """The reply of the intent's example closest to `text`, among the pairs written in one of
        `languages` (None: any), or None when the intent has none."""
        rows = [i for i, p in enumerate(self.pairs) if p[1] == intent and (languages is None or p[4] in languages)]
        if not rows:
            return None
        scores = self.encoder.scores(self.vectors[rows], text)
        top = int(np.argmax(scores))
        example_id, intent, message, reply, language = self.pairs[rows[top]]
        return IntentReply(example_id, intent, message, reply, float(scores[top]), language)


def intent_reply_index(tenant_id: int, languages: list[str] | None = None) -> IntentReplyIndex:
    """The tenant's index, rebuilt when its labelled examples or its base changed since it was built;
    `languages`: the store's, when the caller has them."""
    languages = languages_of(tenant_id, languages)
    return registry.get_versioned(
        "intent_replies", tenant_id, (selectors.intent_replies_version(tenant_id), encoder_version(languages)),
        lambda: IntentReplyIndex(selectors.intent_reply_pairs(tenant_id), sentence_encoder(tenant_id, languages)))


def intent_reply(tenant_id: int, intent: str, text: str, written_in: set[str] | None = None,
                 languages: list[str] | None = None) -> IntentReply | None:
    """The intent's closest generic reply among the pairs written in one of `written_in` (None: any)."""
    return intent_reply_index(tenant_id, languages).best(intent, text, written_in)


def training_replies(tenant_id: int) -> str:
    """Every reply of the tenant's examples (TrainingExample.response), one text: what a generated reply's
    values may come from (inference.responder_gate). Cached until the examples change."""
    from chatbot.models import TrainingExample

    return registry.get_versioned(
        "training_replies", tenant_id, selectors.intent_replies_version(tenant_id),
        lambda: "\n".join(TrainingExample.objects.filter(tenant_id=tenant_id).exclude(response="")
                          .order_by("id").values_list("response", flat=True)))

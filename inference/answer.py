"""The answer pipeline a worker runs for one visitor message: label, decide, reply, publish."""
import logging
import time

from django.db import close_old_connections

from chatbot import realtime, services
from chatbot.models import Conversation, Message

from . import labelling, policy
from .retrieval import knowledge_search

log = logging.getLogger(__name__)

RETRIEVAL_VERSION = "retrieval-minilm"
SENTIMENT_WINDOW = 5


def answer_message(conversation_id: int, message_id: int) -> str:
    """Answer one visitor message; safe to run twice (the second run finds it answered).

    Returns what happened: "answered", "fallback", "handed_off" or why it was skipped.
    """
    close_old_connections()
    message = (
        Message.objects.select_related("conversation__tenant")
        .filter(pk=message_id, conversation_id=conversation_id, sender=Message.Sender.VISITOR)
        .first()
    )
    if message is None:
        return "skipped: no such visitor message"
    conversation = message.conversation
    tenant = conversation.tenant
    if conversation.status != Conversation.Status.BOT:
        return "skipped: conversation is with humans"
    if Message.objects.filter(reply_to=message).exclude(sender=Message.Sender.VISITOR).exists():
        return "skipped: already answered"

    started = time.perf_counter()
    realtime.publish_typing(conversation_id, "bot", True)
    try:
        labels = labelling.label(tenant.id, message.text)
        services.message_label(
            message.id, intent=labels.intent, intent_confidence=labels.intent_confidence,
            sentiment=labels.sentiment, sentiment_confidence=labels.sentiment_confidence,
        )
        hits = knowledge_search(tenant.id, message.text, k=3)
        earlier = list(
            Message.objects.filter(conversation=conversation, sender=Message.Sender.VISITOR, seq__lt=message.seq)
            .order_by("-seq").values_list("sentiment", flat=True)[:SENTIMENT_WINDOW]
        )[::-1]
        decision = policy.decide(tenant, message.text, labels, hits[0].score if hits else None, earlier)
        if decision.hands_off:
            services.conversation_hand_off(conversation_id, decision.reason, reply_to_id=message.id)
            return "handed_off"
        text = hits[0].answer if decision.action == "answer" else tenant.fallback_text
        services.bot_reply_store(
            message.id, text,
            grounding=[h.as_grounding() for h in hits],
            model_version=RETRIEVAL_VERSION,
            score=hits[0].score if hits else None,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            handoff_reason=decision.reason if decision.action == "fallback" else "",
        )
        return "answered" if decision.action == "answer" else "fallback"
    finally:
        realtime.publish_typing(conversation_id, "bot", False)

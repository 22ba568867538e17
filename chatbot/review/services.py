"""Labelling a review-queue item: the right intent, sentiment and reply of a bot reply or hand-off.

The labels are the feedback records the agent console writes (services.feedback_agent_record: one per
reviewer and message, with the original values beside the corrected ones), so the learning loop trains
on them; the item is stamped reviewed (Message.reviewed_at/by) and leaves the queue.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chatbot.conversations import access, services

from chatbot.review import queries as review
from chatbot.errors import PermissionDenied, ServiceError
from chatbot.models import Feedback, Message


def _is_item(message: Message) -> bool:
    return message.sender == Message.Sender.BOT or (
        message.sender == Message.Sender.SYSTEM and bool(message.handoff_code))


def review_label(reviewer: AbstractBaseUser, message_id: object, *, intent: object = "", sentiment: object = "",
                 reply: object = "") -> Feedback:
    """Store a manager's labels of a queue item and take it out of the queue.

    `intent`: one of the store's intents (or out_of_scope); `sentiment`: negative, neutral or positive;
    `reply`: what the bot should have said (optional). Empty means "no opinion". The rating follows from
    them: down when the intent or reply is corrected, up when the reviewer confirms what the bot did.
    """
    message = access.access_message(reviewer, message_id)
    tenant_id = message.conversation.tenant_id
    if not access.is_manager(reviewer, tenant_id):
        raise PermissionDenied("Only the store's managers can label the review queue.")
    if not _is_item(message):
        raise ServiceError("Only the bot's replies and hand-offs are reviewed.", "not_reviewable")
    asked = message.reply_to
    original_intent = asked.intent if asked else ""
    intent = intent.strip() if isinstance(intent, str) else intent
    known = set(review.tenant_intents([tenant_id])[tenant_id]) | ({original_intent} if original_intent else set())
    if intent and (not isinstance(intent, str) or intent not in known):
        raise ServiceError("Pick one of the store's intents.", "invalid_intent")
    if sentiment and sentiment not in review.SENTIMENTS:
        raise ServiceError(f"`sentiment` must be one of {', '.join(review.SENTIMENTS)}.", "invalid_sentiment")
    if not isinstance(reply, str):
        raise ServiceError("`reply` must be text.", "invalid_text")
    reply = reply.strip()
    if not intent and not sentiment and not reply:
        raise ServiceError("Give the right intent, sentiment or reply.", "empty_feedback")
    corrected = bool(reply) or bool(intent and intent != original_intent)
    rating = Feedback.Rating.DOWN if corrected else Feedback.Rating.UP
    with transaction.atomic():
        if message.sender == Message.Sender.BOT:
            feedback = services.feedback_agent_record(reviewer, message.id, rating, reply or None, intent or None)
        else:
            feedback = _handoff_feedback(reviewer, message, rating, reply, intent)
        feedback.original_sentiment = asked.sentiment if asked else ""
        if sentiment:
            feedback.corrected_sentiment = sentiment
        feedback.save(update_fields=["original_sentiment", "corrected_sentiment", "updated_at"])
        Message.objects.filter(pk=message.id).update(reviewed_at=timezone.now(), reviewed_by=reviewer)
    return feedback


def _handoff_feedback(reviewer: AbstractBaseUser, message: Message, rating: str, reply: str,
                      intent: str) -> Feedback:
    """The reviewer's record on a hand-off notice, shaped like an agent's on a bot reply (the notice is
    what the bot said; the right reply is what it should have said instead of handing off)."""
    if reply:
        reply = services._clean_text(reply)
    feedback = Feedback.objects.select_for_update().filter(
        message=message, source=Feedback.Source.AGENT, agent=reviewer,
    ).first() or Feedback(message=message, source=Feedback.Source.AGENT, agent=reviewer)
    feedback.original_reply = message.text
    feedback.original_intent = message.reply_to.intent if message.reply_to else ""
    feedback.rating = rating
    if reply:
        feedback.correction = reply
    if intent:
        feedback.corrected_intent = intent
    feedback.save()
    services.feedback_recorded_emit(feedback, message.conversation.tenant_id)
    return feedback


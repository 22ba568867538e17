"""Writes and workflows of the chat: sessions, messages, replies, hand-off, feedback, tenants.

Every function validates, writes inside a transaction and schedules side effects
(publishing, answering) with `transaction.on_commit`.
"""
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import realtime, selectors
from .errors import NotFound, ServiceError
from .models import Conversation, Feedback, Message, Tenant, Visitor

log = logging.getLogger(__name__)


@dataclass
class Session:
    visitor: Visitor
    conversation: Conversation
    new_visitor: bool


# --- tenants -----------------------------------------------------------------------


def tenant_create(name: str, origins: list[str], slug: str | None = None) -> Tenant:
    """A new store; its slug comes from the name, made unique with a number if taken."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("A tenant needs a name.", "name_required")
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ServiceError(f"Origin {origin!r} must look like https://shop.example.", "invalid_origin")
    base = slugify(slug or name)[:90] or "tenant"
    candidate, n = base, 1
    while Tenant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Tenant.objects.create(
        name=name, slug=candidate, allowed_origins=[o.rstrip("/") for o in origins]
    )


# --- sessions and messages ---------------------------------------------------------


@transaction.atomic
def visitor_session_open(tenant: Tenant, token: str | None) -> Session:
    """The visitor of `token` (a new one if unknown to this tenant) and her open conversation."""
    visitor = selectors.visitor_by_token(tenant, token or "")
    new_visitor = visitor is None
    if new_visitor:
        visitor = Visitor.objects.create(tenant=tenant)
    else:
        Visitor.objects.filter(pk=visitor.pk).update(last_seen_at=timezone.now())
    conversation = selectors.conversation_open_for_visitor(visitor)
    if conversation is None:
        conversation = Conversation.objects.create(tenant=tenant, visitor=visitor)
    return Session(visitor=visitor, conversation=conversation, new_visitor=new_visitor)


def _clean_text(text: object) -> str:
    if not isinstance(text, str):
        raise ServiceError("`text` must be a string.", "invalid_text")
    text = text.strip()
    if not text:
        raise ServiceError("The message is empty.", "empty_text")
    limit = settings.WIDGET_MAX_TEXT_LENGTH
    if len(text) > limit:
        raise ServiceError(f"The message is longer than {limit} characters.", "text_too_long")
    return text


def _clean_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not client_id.strip():
        raise ServiceError("`client_id` must be a non-empty string.", "invalid_client_id")
    if len(client_id) > settings.WIDGET_MAX_CLIENT_ID_LENGTH:
        raise ServiceError(
            f"`client_id` is longer than {settings.WIDGET_MAX_CLIENT_ID_LENGTH} characters.", "invalid_client_id"
        )
    return client_id


def _append(conversation: Conversation, sender: str, text: str, **fields) -> Message:
    """Store a message with the next seq; `conversation` must be locked by the caller."""
    conversation.last_seq += 1
    conversation.save(update_fields=["last_seq", "status", "updated_at"])
    return Message.objects.create(conversation=conversation, seq=conversation.last_seq, sender=sender, text=text, **fields)


def _lock(conversation_id: int) -> Conversation:
    try:
        return Conversation.objects.select_for_update().select_related("tenant").get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None


def message_receive(conversation_id: int, text: object, client_id: object) -> tuple[Message, bool]:
    """Store a visitor message once per client_id and have the bot answer it.

    Returns (message, created); a re-sent client_id returns the stored message.
    """
    text = _clean_text(text)
    client_id = _clean_client_id(client_id)
    try:
        with transaction.atomic():
            conversation = _lock(conversation_id)
            existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
            if existing:
                return existing, False
            if conversation.status == Conversation.Status.RESOLVED:
                conversation.status = Conversation.Status.BOT
                conversation.resolved_at = None
                conversation.save(update_fields=["resolved_at"])
            message = _append(conversation, Message.Sender.VISITOR, text, client_id=client_id)
            tenant_id = conversation.tenant_id
            answer = conversation.status == Conversation.Status.BOT
            transaction.on_commit(lambda: realtime.publish_message(message, tenant_id))
            if answer:
                transaction.on_commit(lambda: _schedule_answer(conversation_id, message.id))
            return message, True
    except IntegrityError:
        # A concurrent duplicate won the race (only possible without row locks, e.g. SQLite).
        return Message.objects.get(conversation_id=conversation_id, client_id=client_id), False


def _schedule_answer(conversation_id: int, message_id: int) -> None:
    from inference.dispatch import answer_later

    answer_later(conversation_id, message_id)


def message_label(message_id: int, *, intent: str = "", intent_confidence: float | None = None,
                  sentiment: str = "", sentiment_confidence: float | None = None) -> None:
    """Store what the classifiers said about a visitor message."""
    Message.objects.filter(pk=message_id).update(
        intent=intent, intent_confidence=intent_confidence,
        sentiment=sentiment, sentiment_confidence=sentiment_confidence,
    )


def bot_reply_store(reply_to_id: int, text: str, **why) -> Message | None:
    """Store and publish the bot's answer to a visitor message, once.

    `why` holds the reply's reasons (grounding, model_version, score, latency_ms, ...).
    Returns None when the message was answered already or a human has taken over.
    """
    with transaction.atomic():
        visitor_message = Message.objects.filter(pk=reply_to_id).first()
        if visitor_message is None:  # erased (e.g. a data-subject delete) while the bot was thinking
            return None
        conversation = _lock(visitor_message.conversation_id)
        if conversation.status != Conversation.Status.BOT:
            return None
        if Message.objects.filter(reply_to_id=reply_to_id, sender=Message.Sender.BOT).exists():
            return None
        reply = _append(conversation, Message.Sender.BOT, text, reply_to_id=reply_to_id, **why)
        tenant_id = conversation.tenant_id
        transaction.on_commit(lambda: realtime.publish_message(reply, tenant_id))
        return reply


def conversation_hand_off(conversation_id: int, reason: str, reply_to_id: int | None = None) -> Message | None:
    """Give the conversation to humans: status human, a system message to the visitor, agents alerted.

    Returns the system message, or None when it was with humans already.
    """
    with transaction.atomic():
        conversation = _lock(conversation_id)
        if conversation.status != Conversation.Status.BOT:
            return None
        conversation.status = Conversation.Status.HUMAN
        conversation.handoff_reason = reason[:200]
        conversation.save(update_fields=["handoff_reason"])
        note = _append(
            conversation, Message.Sender.SYSTEM, conversation.tenant.handoff_text,
            reply_to_id=reply_to_id, handoff_reason=reason[:200],
        )
        tenant_id = conversation.tenant_id
        transaction.on_commit(lambda: realtime.publish_message(note, tenant_id))
        transaction.on_commit(
            lambda: realtime.publish_conversation(conversation_id, tenant_id, Conversation.Status.HUMAN, reason)
        )
        return note


def conversations_resolve_idle(hours: int | None = None) -> int:
    """Close conversations nobody wrote in for `hours`; the visitor's next visit starts afresh."""
    hours = settings.CONVERSATION_IDLE_HOURS if hours is None else hours
    cutoff = timezone.now() - timedelta(hours=hours)
    return Conversation.objects.filter(updated_at__lt=cutoff).exclude(status=Conversation.Status.RESOLVED).update(
        status=Conversation.Status.RESOLVED, resolved_at=timezone.now()
    )


# --- feedback ----------------------------------------------------------------------


def feedback_visitor_rate(conversation_id: int, message_id: object, rating: object) -> Feedback:
    """The visitor's thumbs up or down on a bot reply of her own conversation; a new rating replaces the old."""
    if rating not in Feedback.Rating.values:
        raise ServiceError("`rating` must be 'up' or 'down'.", "invalid_rating")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ServiceError("`message_id` must be an integer.", "invalid_message_id")
    message = Message.objects.filter(
        pk=message_id, conversation_id=conversation_id, sender=Message.Sender.BOT
    ).first()
    if message is None:
        raise NotFound("No bot message with that id in this conversation.", "message_not_found")
    feedback, _ = Feedback.objects.update_or_create(
        message=message, source=Feedback.Source.VISITOR, defaults={"rating": rating}
    )
    return feedback

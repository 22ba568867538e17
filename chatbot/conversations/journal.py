"""Appending to a conversation under its row lock: the next seq, the inbox fields, the events.

Every message of every sender is written by `message_append`, and every change of a
conversation's visible state is announced by `conversation_changed`; nothing else emits
those two events.
"""
from django.utils import timezone

from chatbot import events

from chatbot.conversations import payloads
from chatbot.errors import NotFound
from chatbot.models import Conversation, Message

INBOX_RELATED = ("tenant", "visitor", "assigned_agent")


def conversation_lock(conversation_id: int) -> Conversation:
    """The conversation, row-locked for the rest of the transaction (callers are atomic)."""
    rows = Conversation.objects.filter(pk=conversation_id)
    row_lock(rows)
    conversation = rows.select_related(*INBOX_RELATED).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def row_lock(rows) -> None:
    """Lock `rows` without reading their joins: the caller reads them afresh once it holds the lock.

    A SELECT ... FOR UPDATE that waited for another transaction returns the locked table's new
    columns but its joined rows as they were when it started (PostgreSQL re-checks only the locked
    row), so a conversation another agent just took came back with `assigned_agent_id` set and
    `assigned_agent` None. The read after the lock sees the committed state, joins included.
    """
    list(rows.select_for_update().values_list("pk", flat=True))


def message_append(conversation: Conversation, sender: str, text: str, **fields) -> Message:
    """Store a message with the next seq and announce it; `conversation` must be locked."""
    now = timezone.now()
    conversation.last_seq += 1
    private = fields.get("private", False)
    if not private and sender != Message.Sender.SYSTEM:  # the inbox previews what people wrote
        conversation.last_message_text = text[:200]
        conversation.last_message_sender = sender
        conversation.last_message_at = now
    if sender == Message.Sender.VISITOR:
        conversation.unread += 1
        conversation.waiting_since = conversation.waiting_since or now
    elif sender in (Message.Sender.BOT, Message.Sender.AGENT) and not private:
        conversation.waiting_since = None
    conversation.save()
    message = Message.objects.create(conversation=conversation, seq=conversation.last_seq, sender=sender, text=text,
                                     **fields)
    if message.reply_to_id:
        message.reply_to = Message.objects.get(pk=message.reply_to_id)
    events.emit({
        "type": events.MESSAGE_CREATED,
        "tenant": conversation.tenant_id,
        "conversation": conversation.id,
        "status": conversation.status,
        "message": payloads.agent_message_payload(message),
        "summary": payloads.conversation_payload(conversation),
    })
    return message


def conversation_changed(conversation: Conversation, reason: str = "", previous: dict | None = None) -> None:
    """Announce the conversation's new state (status, assignee, unread, CSAT, contact...)."""
    events.emit({
        "type": events.CONVERSATION_CHANGED,
        "tenant": conversation.tenant_id,
        "conversation": payloads.conversation_payload(conversation),
        "previous": previous or {},
        "reason": reason,
    })


def conversation_fresh(conversation_id: int) -> Conversation:
    return Conversation.objects.select_related(*INBOX_RELATED).get(pk=conversation_id)


def unread_clear(conversation_id: int) -> bool:
    """Reset the unread count; True when there was something to clear."""
    return bool(Conversation.objects.filter(pk=conversation_id, unread__gt=0).update(unread=0))

"""The JSON shapes of the two socket protocols (MSG, AMSG, CONV in docs/widget-protocol.md and docs/agent-protocol.md), built in one place."""
from django.contrib.auth.models import AbstractBaseUser

from chatbot.models import Conversation, Message


def iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def display_name(user: AbstractBaseUser | None) -> str | None:
    """The name visitors and colleagues see for an agent."""
    if user is None:
        return None
    return (user.get_full_name() or "").strip() or user.get_username()


def message_payload(message: Message) -> dict:
    """MSG of the widget protocol; agent messages also carry their author's display name."""
    payload = {
        "id": message.id,
        "seq": message.seq,
        "sender": message.sender,
        "text": message.text,
        "created_at": iso(message.created_at),
    }
    if message.sender == Message.Sender.AGENT:
        payload["author"] = display_name(message.author)
    if message.choices:  # buttons under a bot question (Yes / No); a click sends the label as a message
        payload["choices"] = list(message.choices)
    return payload


def message_why(message: Message) -> dict:
    """Why the bot said what it said: grounding, the labels of the message it answered, versions."""
    asked = message.reply_to
    versions = dict(asked.label_versions) if asked else {}
    if message.model_version:
        versions["reply"] = message.model_version
    return {
        "grounding": message.grounding or [],
        "intent": asked.intent if asked else "",
        "intent_confidence": asked.intent_confidence if asked else None,
        "sentiment": asked.sentiment if asked else "",
        "sentiment_confidence": asked.sentiment_confidence if asked else None,
        "score": message.score,
        "latency_ms": message.latency_ms,
        "model_versions": versions,
        "handoff_reason": message.handoff_reason,
        "handoff_code": message.handoff_code,  # a chatbot.models.HandoffReason, "" when none
    }


def agent_message_payload(message: Message) -> dict:
    """AMSG of the agent protocol: MSG plus author, private and, for bot replies, the why."""
    payload = message_payload(message)
    payload["author"] = display_name(message.author) if message.sender == Message.Sender.AGENT else None
    payload["private"] = message.private
    if message.sender == Message.Sender.AGENT:
        payload["client_id"] = message.client_id  # lets the sending console match its pending bubble
    if message.sender == Message.Sender.VISITOR:
        payload["labels"] = {
            "intent": message.intent,
            "intent_confidence": message.intent_confidence,
            "sentiment": message.sentiment,
            "sentiment_confidence": message.sentiment_confidence,
        }
    if message.sender in (Message.Sender.BOT, Message.Sender.SYSTEM) and (
        message.sender == Message.Sender.BOT or message.handoff_code or message.handoff_reason
    ):
        payload["why"] = message_why(message)
    if message.reply_to_id:
        payload["reply_to"] = message.reply_to_id
    if message.email_state:  # an agent's reply (or a transcript) mailed to the visitor: queued, sent, failed
        payload["email_state"] = message.email_state
    if message.channel != Message.Channel.WIDGET:  # a visitor's answer that came by e-mail
        payload["channel"] = message.channel
    return payload


def conversation_payload(conversation: Conversation) -> dict:
    """CONV of the agent protocol; reads only the conversation row and its joined tenant/visitor/agent."""
    agent = conversation.assigned_agent
    visitor = conversation.visitor
    return {
        "id": conversation.id,
        "tenant": conversation.tenant.slug,
        "tenant_name": conversation.tenant.name,
        "status": conversation.status,
        "assignee": {"id": agent.pk, "name": display_name(agent)} if agent else None,
        "visitor": {"id": visitor.id, "name": f"Visitor {visitor.id}", "email": visitor.email},
        "last_message": {
            "text": conversation.last_message_text,
            "sender": conversation.last_message_sender,
            "at": iso(conversation.last_message_at),
        } if conversation.last_message_at else None,
        "unread": conversation.unread,
        "sentiment": conversation.last_sentiment,
        "language": conversation.language,  # the visitor's, ISO 639-1 ("" until a message has a clear one)
        "handoff_reason": conversation.handoff_reason,
        "handoff_code": conversation.handoff_code,  # a chatbot.models.HandoffReason, "" when none
        "csat": conversation.csat,
        "resolved_at": iso(conversation.resolved_at),
        "waiting_since": iso(conversation.waiting_since),
        # The first-response target of the latest hand-off (null: none) and when an agent first answered after it.
        "first_response_due": iso(conversation.first_response_due),
        "first_response_at": iso(conversation.first_response_at),
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
    }

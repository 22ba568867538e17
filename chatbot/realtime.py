"""Channel-layer groups and the frames pushed to them; the one place group names are built.

It listens to the domain events (chatbot.events) and forwards them to the sockets."""
import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from . import events

WIDGET_MESSAGE_FIELDS = ("id", "seq", "sender", "text", "created_at", "author")

log = logging.getLogger(__name__)

# The ASGI server's event loop, recorded at connect; the in-memory layer only works from it.
_server_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def visitors_group(tenant_id: int) -> str:
    """Every widget socket of a tenant: told when its team comes online or goes away."""
    return f"visitors.{tenant_id}"


PRESENCE_EVENT = {"type": "chat.presence"}


def tenant_group(tenant_id: int) -> str:
    """Agents' consoles of a tenant listen here."""
    return f"tenant.{tenant_id}"


def remember_server_loop() -> None:
    """Called from async code in the web process so worker threads can publish in-process."""
    global _server_loop
    with _loop_lock:
        _server_loop = asyncio.get_running_loop()


def _send(group: str, event: dict) -> None:
    """Best effort: the message is stored already, and clients catch up with `resume`."""
    try:
        _group_send(group, event)
    except Exception:  # noqa: BLE001 - a broken layer must not undo a stored message
        log.exception("could not publish %s to %s", event.get("type"), group)


def _group_send(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _server_loop
    in_memory = type(layer).__name__ == "InMemoryChannelLayer"
    if in_memory and loop is not None and loop.is_running():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop).result(timeout=10)
            return
    async_to_sync(layer.group_send)(group, event)


# --- the fan-out: domain events to the widget's and the agents' groups --------------------


def on_message_created(event: dict) -> None:
    """Agents get every message (notes included) and the conversation's new summary; the widget
    gets what others wrote (the visitor's own messages reached her as acks), never notes."""
    amsg = event["message"]
    if amsg["sender"] != "visitor" and not amsg.get("private"):
        widget_msg = {k: v for k, v in amsg.items() if k in WIDGET_MESSAGE_FIELDS}
        if amsg["sender"] != "agent":
            widget_msg.pop("author", None)
        _send(conversation_group(event["conversation"]), {"type": "chat.message", "message": widget_msg})
    group = tenant_group(event["tenant"])
    _send(group, {"type": "agent.message", "conversation": event["conversation"], "message": amsg})
    _send(group, {"type": "agent.conversation", "conversation": event["summary"]})


def on_conversation_changed(event: dict) -> None:
    conv = event["conversation"]
    _send(tenant_group(event["tenant"]), {"type": "agent.conversation", "conversation": conv})
    previous = event.get("previous") or {}
    assignee = (conv["assignee"] or {}).get("id")
    if previous and (previous.get("status") != conv["status"] or previous.get("assignee") != assignee):
        _send(conversation_group(conv["id"]), {"type": "chat.status", "status": conv["status"],
                                               "agent": (conv["assignee"] or {}).get("name")})


def on_typing(event: dict) -> None:
    if event["sender"] != "visitor":
        _send(conversation_group(event["conversation"]),
              {"type": "chat.typing", "sender": event["sender"], "on": event["on"]})
    _send(tenant_group(event["tenant"]), {"type": "agent.typing", "conversation": event["conversation"],
                                          "sender": event["sender"], "on": event["on"]})


def on_suggestions_ready(event: dict) -> None:
    _send(tenant_group(event["tenant"]), {"type": "agent.suggestions", "conversation": event["conversation"],
                                          "message_id": event["message"], "suggestions": event["suggestions"]})


def on_feedback_recorded(event: dict) -> None:
    _send(tenant_group(event["tenant"]), {"type": "agent.feedback", "conversation": event["conversation"],
                                          "message_id": event["message"], "feedback": event["feedback"]})


def subscribe_all() -> None:
    """Called once from chatbot.apps: the realtime side of every domain event."""
    events.subscribe(events.MESSAGE_CREATED, on_message_created)
    events.subscribe(events.CONVERSATION_CHANGED, on_conversation_changed)
    events.subscribe(events.TYPING, on_typing)
    events.subscribe(events.SUGGESTIONS_READY, on_suggestions_ready)
    events.subscribe(events.FEEDBACK_RECORDED, on_feedback_recorded)

"""Channel-layer groups and the frames pushed to them; the one place group names are built."""
import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .models import Message

log = logging.getLogger(__name__)

# The ASGI server's event loop, recorded at connect; the in-memory layer only works from it.
_server_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def tenant_group(tenant_id: int) -> str:
    """Agents' consoles of a tenant listen here."""
    return f"tenant.{tenant_id}"


def message_payload(message: Message) -> dict:
    """MSG of the widget protocol."""
    return {
        "id": message.id,
        "seq": message.seq,
        "sender": message.sender,
        "text": message.text,
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
    }


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


def publish_message(message: Message, tenant_id: int) -> None:
    """Push a stored message to its tenant's agents and, unless the visitor wrote it
    (she got an ack), to the conversation's sockets."""
    payload = message_payload(message)
    if message.sender != Message.Sender.VISITOR:
        _send(conversation_group(message.conversation_id), {"type": "chat.message", "message": payload})
    _send(
        tenant_group(tenant_id),
        {"type": "agent.message", "conversation": message.conversation_id, "message": payload},
    )


def publish_typing(conversation_id: int, sender: str, on: bool) -> None:
    _send(conversation_group(conversation_id), {"type": "chat.typing", "sender": sender, "on": on})


def publish_conversation(conversation_id: int, tenant_id: int, status: str, reason: str = "") -> None:
    """Tell agents a conversation changed state (e.g. handed off to humans)."""
    _send(
        tenant_group(tenant_id),
        {"type": "agent.conversation", "conversation": conversation_id, "status": status, "reason": reason},
    )

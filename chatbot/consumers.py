"""The widget websocket: frames in, service calls, frames out (protocol in ARCHITECTURE.md)."""
import json
import time
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import presence, realtime, selectors, services
from .errors import RateLimited, ServiceError
from .payloads import display_name, message_payload

CLOSE_BAD_KEY = 4401
CLOSE_BAD_ORIGIN = 4403
TYPING_MIN_INTERVAL = 1.0  # seconds between two visitor typing frames forwarded to agents


def _holder(conversation) -> dict:
    """The session frame's extras: who answers (an agent's name) and the rating given, if any."""
    extras = {}
    if conversation.status == conversation.Status.HUMAN and conversation.assigned_agent_id:
        extras["agent"] = display_name(conversation.assigned_agent)
    if conversation.csat is not None:
        extras["csat"] = conversation.csat
    return extras


class WidgetConsumer(AsyncJsonWebsocketConsumer):
    conversation_id: int | None = None

    async def connect(self) -> None:
        realtime.remember_server_loop()
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        key = params.get("key", [""])[0]
        token = params.get("visitor", [""])[0]
        await self.accept()
        tenant = await database_sync_to_async(selectors.tenant_by_public_key)(key)
        if tenant is None:
            await self._refuse("invalid_key", "Unknown or inactive widget key.", CLOSE_BAD_KEY)
            return
        if not tenant.origin_allowed(self._header("origin")):
            await self._refuse("origin_not_allowed", "This site may not open the widget.", CLOSE_BAD_ORIGIN)
            return
        session = await database_sync_to_async(services.visitor_session_open)(tenant, token)
        self.conversation_id = session.conversation.id
        self._recent = deque()
        self.tenant_id = tenant.id
        self._typing_at = 0.0
        # Join before reading history so nothing published in between is missed.
        await self.channel_layer.group_add(realtime.conversation_group(self.conversation_id), self.channel_name)
        await self.channel_layer.group_add(realtime.visitors_group(self.tenant_id), self.channel_name)
        history = await database_sync_to_async(selectors.conversation_history)(
            self.conversation_id, limit=settings.WIDGET_HISTORY_LIMIT
        )
        await self.send_json({
            "type": "session",
            "visitor": session.visitor.token,
            "conversation": self.conversation_id,
            "messages": [message_payload(m) for m in history],
            "greeting": tenant.greeting,
            "name": tenant.name,
            **await self._status(session.conversation.status),
            **_holder(session.conversation),
        })

    async def disconnect(self, code: int) -> None:
        if self.conversation_id is not None:
            await self.channel_layer.group_discard(realtime.conversation_group(self.conversation_id), self.channel_name)
            await self.channel_layer.group_discard(realtime.visitors_group(self.tenant_id), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.conversation_id is None:
            return
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError:
            frame = None
            await self._error("invalid_json", "Frames must be JSON objects.")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._error("invalid_frame", "Frames must be JSON objects with a string `type`.")
            return
        handler = {
            "message": self._on_message, "resume": self._on_resume, "feedback": self._on_feedback,
            "csat": self._on_csat, "contact": self._on_contact, "typing": self._on_typing,
        }.get(frame["type"])
        if handler is None:
            await self._error("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
            return
        try:
            await handler(frame)
        except ServiceError as exc:
            # An error answering a message names it, so the client knows which one was refused.
            client_id = frame.get("client_id") if frame["type"] == "message" else None
            await self._error(exc.code, exc.detail, client_id if isinstance(client_id, str) else None)

    async def _on_message(self, frame: dict) -> None:
        self._check_rate()
        message, _ = await database_sync_to_async(services.message_receive)(
            self.conversation_id, frame.get("text"), frame.get("client_id")
        )
        await self.send_json(
            {"type": "ack", "client_id": message.client_id, "message": message_payload(message)}
        )

    async def _on_resume(self, frame: dict) -> None:
        after = frame.get("after_seq", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ServiceError("`after_seq` must be a whole number of 0 or more.", "invalid_after_seq")
        for message in await database_sync_to_async(selectors.conversation_history)(self.conversation_id, after):
            await self.send_json({"type": "message", "message": message_payload(message)})

    async def _on_feedback(self, frame: dict) -> None:
        await database_sync_to_async(services.feedback_visitor_rate)(
            self.conversation_id, frame.get("message_id"), frame.get("rating")
        )

    async def _on_csat(self, frame: dict) -> None:
        await database_sync_to_async(services.conversation_rate)(self.conversation_id, frame.get("rating"))
        await self.send_json({"type": "csat", "rating": frame.get("rating")})

    async def _on_contact(self, frame: dict) -> None:
        visitor = await database_sync_to_async(services.visitor_contact_leave)(self.conversation_id, frame.get("email"))
        await self.send_json({"type": "contact", "email": visitor.email})

    async def _on_typing(self, frame: dict) -> None:
        on = frame.get("on")
        if not isinstance(on, bool):
            raise ServiceError("`on` must be true or false.", "invalid_typing")
        now = time.monotonic()
        if on and now - self._typing_at < TYPING_MIN_INTERVAL:
            return  # agents know already; a client sending more often is dropped quietly
        self._typing_at = now if on else 0.0
        await database_sync_to_async(services.typing_set)(self.conversation_id, "visitor", on, self.tenant_id)

    async def _status(self, status: str) -> dict:
        """Who has the conversation, and whether a person could answer now."""
        self.status = status
        online = await database_sync_to_async(presence.agents_online)(self.tenant_id)
        return {"status": status, "agents_online": online}

    # Events from the channel layer.
    async def chat_message(self, event: dict) -> None:
        await self.send_json({"type": "message", "message": event["message"]})

    async def chat_status(self, event: dict) -> None:
        frame = {"type": "status", **await self._status(event["status"])}
        if event.get("agent"):
            frame["agent"] = event["agent"]
        await self.send_json(frame)

    async def chat_presence(self, event: dict) -> None:
        """An agent of the store came online or the last one left: a visitor waiting hears of it."""
        if getattr(self, "status", None) == "waiting":
            await self.send_json({"type": "status", **await self._status("waiting")})

    async def chat_typing(self, event: dict) -> None:
        await self.send_json({"type": "typing", "sender": event["sender"], "on": event["on"]})

    # Helpers.
    def _check_rate(self) -> None:
        now = time.monotonic()
        window = settings.WIDGET_RATE_WINDOW
        while self._recent and now - self._recent[0] > window:
            self._recent.popleft()
        if len(self._recent) >= settings.WIDGET_RATE_LIMIT:
            raise RateLimited(f"Too many messages; wait a few seconds (limit {settings.WIDGET_RATE_LIMIT} per {window} s).")
        self._recent.append(now)

    def _header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.scope.get("headers", []):
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    async def _error(self, code: str, detail: str, client_id: str | None = None) -> None:
        frame = {"type": "error", "code": code, "detail": detail}
        if client_id:
            frame["client_id"] = client_id
        await self.send_json(frame)

    async def _refuse(self, code: str, detail: str, close_code: int) -> None:
        await self._error(code, detail)
        await self.close(code=close_code)

"""The widget websocket: frames in, service calls, frames out (protocol in ARCHITECTURE.md)."""
import hashlib
import json
import re
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import identity, presence, ratelimit, realtime, selectors, services
from .errors import InvalidState, NotFound, ServiceError
from .outages import OutageGuard
from .payloads import display_name, message_payload

CLOSE_BAD_KEY = 4401
CLOSE_BAD_ORIGIN = 4403
CLOSE_RATE_LIMITED = 4429
TYPING_MIN_INTERVAL = 1.0  # seconds between two visitor typing frames forwarded to agents
# The rate limits (chatbot.ratelimit rules) each kind of widget frame counts against.
FRAME_LIMITS = {
    "message": ("visitor_messages", "ip_messages", "tenant_messages"),
    "resume": ("visitor_resumes",),
    "feedback": ("visitor_frames", "ip_frames"), "csat": ("visitor_frames", "ip_frames"),
    "contact": ("visitor_frames", "ip_frames"), "typing": ("visitor_frames", "ip_frames"),
}
# A field whose text no database can store is refused with its own code; any other with invalid_frame.
FIELD_CODES = {"text": "invalid_text", "client_id": "invalid_client_id"}
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKETS = re.compile(r"[\[\]{}]")


class FrameRefused(ServiceError):
    """A frame refused before any handler saw it; names the message it carried when it could be read."""

    def __init__(self, detail: str, code: str, client_id: str | None = None):
        super().__init__(detail, code)
        self.client_id = client_id


def _too_deep(text: str, limit: int) -> bool:
    """Whether the JSON in `text` nests arrays and objects more than `limit` deep (strings skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _JSON_BRACKETS.finditer(_JSON_STRINGS.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def _storable(value) -> bool:
    """Whether every string in `value` has a UTF-8 form (JSON's "\\ud800" escapes make ones that have none)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def frame_parse(text_data: str | None, bytes_data: bytes | None) -> dict:
    """A socket frame as a JSON object with a string `type`, or FrameRefused with the code of what is wrong.

    Both sockets parse with it: at most SOCKET_MAX_FRAME_SIZE characters (bytes for binary frames), JSON
    nested at most SOCKET_MAX_JSON_DEPTH deep (checked before parsing, so nothing recurses), and text that
    the database can store.
    """
    limit = settings.SOCKET_MAX_FRAME_SIZE
    data = text_data if text_data is not None else bytes_data
    if data is not None and len(data) > limit:
        raise FrameRefused(f"Frames are limited to {limit} characters.", "frame_too_large")
    if text_data is None:
        raise FrameRefused("Frames must be JSON objects sent as text.", "invalid_frame")
    if _too_deep(text_data, settings.SOCKET_MAX_JSON_DEPTH):
        raise FrameRefused(f"Frames may nest at most {settings.SOCKET_MAX_JSON_DEPTH} levels deep.", "invalid_json")
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError):
        raise FrameRefused("Frames must be JSON objects.", "invalid_json") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameRefused("Frames must be JSON objects with a string `type`.", "invalid_frame")
    if "\\u" in text_data:
        for key, value in frame.items():
            if not _storable([key, value]):
                client_id = frame.get("client_id")
                raise FrameRefused(f"`{key[:40]}` must be valid Unicode text." if _storable(key) else
                                   "Frames must be valid Unicode text.", FIELD_CODES.get(key, "invalid_frame"),
                                   client_id if isinstance(client_id, str) and _storable(client_id) else None)
    return frame


def frame_client_id(frame: dict) -> str | None:
    """The `client_id` a frame carried, for the error that answers it (None when it had no usable one)."""
    client_id = frame.get("client_id")
    return client_id if isinstance(client_id, str) and 0 < len(client_id) <= 200 else None


def _pending_group(visitor_key: str) -> str:
    """The sockets of one visitor not stored yet (tabs sharing her token, devices sharing her verified id):
    the first message, sent from any of them, starts the conversation for them all."""
    return "pending-visitor." + hashlib.sha256(visitor_key.encode()).hexdigest()[:40]


def _holder(conversation) -> dict:
    """The session frame's extras: who answers (an agent's name) and the rating given, if any."""
    extras = {}
    if conversation.status == conversation.Status.HUMAN and conversation.assigned_agent_id:
        extras["agent"] = display_name(conversation.assigned_agent)
    if conversation.csat is not None:
        extras["csat"] = conversation.csat
    return extras


class DirectDispatch:
    """Dispatch events to handlers without channels' `aclose_old_connections()` before each one.

    That call hops to the one database thread for every event of every socket (a relayed message:
    the widget's chat.message, the agents' message and conversation events), queueing behind the
    database work of all sockets; and it is redundant here: every handler reaches the database through
    database_sync_to_async, which closes old connections before and after each call itself.
    """

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class WidgetConsumer(OutageGuard, DirectDispatch, AsyncJsonWebsocketConsumer):
    tenant = None  # set once the connect is accepted
    pending_group = ""  # while the visitor has no conversation: see _pending_group
    conversation_id: int | None = None  # None until the visitor's first message (or a known conversation)

    async def connect(self) -> None:
        realtime.remember_server_loop()
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))

        def param(name: str) -> str:
            return params.get(name, [""])[0]

        await self.accept()
        self.ip = ratelimit.client_ip(self.scope)
        try:
            await ratelimit.hit([(ratelimit.rules_for().get("ip_connects"), self.ip)])
        except ratelimit.Limited as exc:
            await self._refuse(exc.code, exc.detail, CLOSE_RATE_LIMITED, retry_after=exc.retry_after)
            return
        tenant = await database_sync_to_async(selectors.tenant_by_public_key)(identity.clean_key(param("key")))
        if tenant is None:
            await self._refuse("invalid_key", "Unknown or inactive widget key.", CLOSE_BAD_KEY)
            return
        if not tenant.origin_allowed(self._header("origin")):
            await self._refuse("origin_not_allowed", "This site may not open the widget.", CLOSE_BAD_ORIGIN)
            return
        self.rules = ratelimit.rules_for(tenant.rate_limits)
        try:
            self.external_id = identity.identity_verify(tenant, param("user_id"), param("user_hash"))
            await ratelimit.hit([(self.rules.get("tenant_connects"), str(tenant.id))])
        except ratelimit.Limited as exc:
            await self._refuse(exc.code, exc.detail, CLOSE_RATE_LIMITED, retry_after=exc.retry_after)
            return
        except identity.IdentityRefused as exc:
            await self._refuse(exc.code, exc.detail, CLOSE_BAD_KEY)
            return
        session = await database_sync_to_async(services.visitor_session_peek)(
            tenant, param("visitor"), external_id=self.external_id)
        self.tenant, self.tenant_id, self.token = tenant, tenant.id, session.token
        # A verified visitor is limited as herself on every device; others by their token (and address).
        self.subjects = {"visitor": f"id:{self.external_id}" if self.external_id else session.token,
                         "ip": self.ip, "tenant": str(tenant.id)}
        self._typing_at = 0.0
        conversation = session.conversation
        await self.channel_layer.group_add(realtime.visitors_group(self.tenant_id), self.channel_name)
        history = []
        if conversation is None:
            self.pending_group = _pending_group(self.subjects["visitor"])
            await self.channel_layer.group_add(self.pending_group, self.channel_name)
        else:
            # Join before reading history so nothing published in between is missed.
            await self._join(conversation.id)
            history = await database_sync_to_async(selectors.conversation_history)(
                conversation.id, limit=settings.WIDGET_HISTORY_LIMIT
            )
        await self.send_json({
            "type": "session",
            "visitor": session.token,
            "conversation": self.conversation_id,
            "messages": [message_payload(m) for m in history],
            "greeting": tenant.greeting,
            "name": tenant.name,
            **await self._status(conversation.status if conversation else "bot"),
            **(_holder(conversation) if conversation else {}),
        })

    async def disconnect(self, code: int) -> None:
        if self.tenant is None:
            return
        await self.channel_layer.group_discard(realtime.visitors_group(self.tenant_id), self.channel_name)
        if self.pending_group:
            await self.channel_layer.group_discard(self.pending_group, self.channel_name)
        if self.conversation_id is not None:
            await self.channel_layer.group_discard(realtime.conversation_group(self.conversation_id), self.channel_name)

    async def _join(self, conversation_id: int) -> None:
        self.conversation_id = conversation_id
        await self.channel_layer.group_add(realtime.conversation_group(conversation_id), self.channel_name)
        if self.pending_group:
            await self.channel_layer.group_discard(self.pending_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.tenant is None:
            return
        try:
            frame = frame_parse(text_data, bytes_data)
        except FrameRefused as exc:
            await self._error(exc.code, exc.detail, exc.client_id)
            return
        handler = {
            "message": self._on_message, "resume": self._on_resume, "feedback": self._on_feedback,
            "csat": self._on_csat, "contact": self._on_contact, "typing": self._on_typing,
        }.get(frame["type"])
        if handler is None:
            await self._error("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
            return
        try:
            await self._limit(frame["type"])
            await handler(frame)
        except ServiceError as exc:
            # An error names the frame's client_id when it carried one (a message's), so the client
            # knows which message was refused; errors about other frames name none.
            await self._error(exc.code, exc.detail, frame_client_id(frame),
                              retry_after=getattr(exc, "retry_after", None))

    async def _limit(self, frame_type: str) -> None:
        """Count the frame against its rate limits (per visitor, address, tenant); Limited when one is full."""
        await ratelimit.hit([(self.rules.get(name), self.subjects[name.split("_")[0]])
                             for name in FRAME_LIMITS[frame_type]])

    async def _on_message(self, frame: dict) -> None:
        text, client_id = frame.get("text"), frame.get("client_id")
        pending = self.pending_group if self.conversation_id is None else ""
        if pending:
            # Her first message creates the visitor and the conversation; a refused one creates nothing.
            services.message_validate(text, client_id)
            session = await database_sync_to_async(services.visitor_session_open)(
                self.tenant, self.token, external_id=self.external_id)
            await self._join(session.conversation.id)  # before the message, so its reply cannot be missed
        message, _ = await database_sync_to_async(services.message_receive)(self.conversation_id, text, client_id)
        if pending:  # her other tabs join the conversation too
            await self.channel_layer.group_send(pending, {"type": "chat.started", "conversation": self.conversation_id})
        await self.send_json({"type": "ack", "client_id": message.client_id, "conversation": message.conversation_id,
                              "message": message_payload(message)})

    async def _on_resume(self, frame: dict) -> None:
        """Every message after `after_seq`, in order; at most the newest WIDGET_HISTORY_LIMIT of them."""
        after = frame.get("after_seq", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ServiceError("`after_seq` must be a whole number of 0 or more.", "invalid_after_seq")
        if self.conversation_id is None:
            return
        for message in await database_sync_to_async(selectors.conversation_history)(
                self.conversation_id, after, limit=settings.WIDGET_HISTORY_LIMIT):
            await self.send_json({"type": "message", "message": message_payload(message)})

    async def _on_feedback(self, frame: dict) -> None:
        if self.conversation_id is None:
            raise NotFound("No bot message with that id in this conversation.", "message_not_found")
        await database_sync_to_async(services.feedback_visitor_rate)(
            self.conversation_id, frame.get("message_id"), frame.get("rating")
        )

    async def _on_csat(self, frame: dict) -> None:
        if self.conversation_id is None:
            raise InvalidState("A conversation can be rated once it is resolved.")
        await database_sync_to_async(services.conversation_rate)(self.conversation_id, frame.get("rating"))
        await self.send_json({"type": "csat", "rating": frame.get("rating")})

    async def _on_contact(self, frame: dict) -> None:
        if self.conversation_id is None:
            raise InvalidState("Leave an address once you have written to us.")
        visitor = await database_sync_to_async(services.visitor_contact_leave)(self.conversation_id, frame.get("email"))
        await self.send_json({"type": "contact", "email": visitor.email})

    async def _on_typing(self, frame: dict) -> None:
        on = frame.get("on")
        if not isinstance(on, bool):
            raise ServiceError("`on` must be true or false.", "invalid_typing")
        if self.conversation_id is None:
            return  # nobody to tell before her first message
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
    async def chat_started(self, event: dict) -> None:
        """Another tab of this visitor started her conversation: join it and show what it holds."""
        if self.conversation_id is not None:
            return
        await self._join(event["conversation"])
        history = await database_sync_to_async(selectors.conversation_history)(
            self.conversation_id, limit=settings.WIDGET_HISTORY_LIMIT)
        for message in history:
            await self.send_json({"type": "message", "message": message_payload(message)})
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
    def _header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.scope.get("headers", []):
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    async def _error(self, code: str, detail: str, client_id: str | None = None, *,
                     retry_after: int | None = None) -> None:
        frame = {"type": "error", "code": code, "detail": detail}
        if client_id:
            frame["client_id"] = client_id
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self.send_json(frame)

    async def _refuse(self, code: str, detail: str, close_code: int, *, retry_after: int | None = None) -> None:
        await self._error(code, detail, retry_after=retry_after)
        await self.close(code=close_code)

"""The widget websocket: frames in, service calls, frames out (protocol in docs/widget-protocol.md)."""
import hashlib
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from chatbot.conversations import hours, identity, selectors, services

from chatbot.mail import presence as mail_presence
from chatbot.sockets import ratelimit, realtime
from chatbot.errors import InvalidState, NotFound, ServiceError
from chatbot.models import language_code
from chatbot.sockets.base import ReplayBudget, SocketConsumer, replay_rule
from chatbot.sockets.outages import OutageGuard
from chatbot.conversations.payloads import display_name, message_payload

CLOSE_BAD_KEY = 4401
CLOSE_BAD_ORIGIN = 4403
CLOSE_RATE_LIMITED = 4429
TYPING_MIN_INTERVAL = 1.0  # seconds between two visitor typing frames forwarded to agents
# The rate limits (chatbot.sockets.ratelimit rules) each kind of widget frame counts against.
FRAME_LIMITS = {
    "message": ("visitor_messages", "ip_messages", "tenant_messages"),
    "resume": ("visitor_resumes",),
    "feedback": ("visitor_frames", "ip_frames"), "csat": ("visitor_frames", "ip_frames"),
    "contact": ("visitor_frames", "ip_frames"), "typing": ("visitor_frames", "ip_frames"),
}


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


class WidgetConsumer(OutageGuard, SocketConsumer):
    FRAME_TYPES = tuple(FRAME_LIMITS)
    ECHOED = ("client_id",)
    tenant = None  # set once the connect is accepted
    pending_group = ""  # while the visitor has no conversation: see _pending_group
    language = ""  # the widget's language (its `lang` query parameter): the store's greeting in it
    conversation_id: int | None = None  # None until the visitor's first message (or a known conversation)

    async def connect(self) -> None:
        realtime.remember_server_loop()
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))

        def param(name: str) -> str:
            return params.get(name, [""])[0]

        await self.accept()
        self.ip = ratelimit.client_ip(self.scope)
        self.language = language_code(param("lang"))  # the widget's own language: the greeting follows it
        try:
            await ratelimit.hit([(ratelimit.rules_for().get("ip_connects"), self.ip)])
        except ratelimit.Limited as exc:
            await self.refuse(exc, CLOSE_RATE_LIMITED)
            return
        tenant = await database_sync_to_async(selectors.tenant_by_public_key)(identity.clean_key(param("key")))
        if tenant is None:
            await self.refuse(ServiceError("Unknown or inactive widget key.", "invalid_key"), CLOSE_BAD_KEY)
            return
        if not tenant.origin_allowed(self._header("origin")):
            await self.refuse(ServiceError("This site may not open the widget.", "origin_not_allowed"),
                              CLOSE_BAD_ORIGIN)
            return
        self.rules = ratelimit.rules_for(tenant.rate_limits)
        try:
            self.external_id = identity.identity_verify(tenant, param("user_id"), param("user_hash"))
            await ratelimit.hit([(self.rules.get("tenant_connects"), str(tenant.id))])
        except ratelimit.Limited as exc:
            await self.refuse(exc, CLOSE_RATE_LIMITED)
            return
        except identity.IdentityRefused as exc:
            await self.refuse(exc, CLOSE_BAD_KEY)
            return
        session = await database_sync_to_async(services.visitor_session_peek)(
            tenant, param("visitor"), external_id=self.external_id)
        self.tenant, self.tenant_id, self.token = tenant, tenant.id, session.token
        # A verified visitor is limited as herself on every device; others by their token (and address).
        self.subjects = {"visitor": f"id:{self.external_id}" if self.external_id else session.token,
                         "ip": self.ip, "tenant": str(tenant.id)}
        self._typing_at = 0.0
        self.replays = ReplayBudget(replay_rule())
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
            "greeting": tenant.text("greeting", self.language),
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
            await mail_presence.visitor_left(self.conversation_id, self.channel_name)  # replies are mailed again
            await self.channel_layer.group_discard(realtime.conversation_group(self.conversation_id), self.channel_name)

    async def _join(self, conversation_id: int) -> None:
        self.conversation_id = conversation_id
        await self.channel_layer.group_add(realtime.conversation_group(conversation_id), self.channel_name)
        await mail_presence.visitor_joined(conversation_id, self.channel_name)  # she reads replies here, not by mail
        if self.pending_group:
            await self.channel_layer.group_discard(self.pending_group, self.channel_name)

    def frames_open(self) -> bool:
        return self.tenant is not None

    async def before_frame(self, frame: dict) -> None:
        """Count the frame against its rate limits; a resume counts itself (its continuation pages do not)."""
        if frame["type"] != "resume":
            await self._limit(frame["type"])

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
        message, _ = await database_sync_to_async(services.message_receive)(
            self.conversation_id, text, client_id, ip=self.ip)
        if pending:  # her other tabs join the conversation too
            await self.channel_layer.group_send(pending, {"type": "chat.started", "conversation": self.conversation_id})
        await self.send_json({"type": "ack", "client_id": message.client_id, "conversation": message.conversation_id,
                              "message": message_payload(message)})

    async def _on_resume(self, frame: dict) -> None:
        """A page of the messages after `after_seq` (at most SOCKET_HISTORY_PAGE, in order), then `resumed`.

        Starting a replay counts against the socket's SOCKET_REPLAYS and the visitor's `visitor_resumes`;
        asking for the page that continues the last one (after its `last_seq`, when it said `more`) does not.
        """
        after = frame.get("after_seq", 0)
        continuing = self.replays.continues(after)
        if not continuing:
            self.replays.check()
            await self._limit("resume")
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ServiceError("`after_seq` must be a whole number of 0 or more.", "invalid_after_seq")
        if not continuing:
            self.replays.start()
        messages, more = [], False
        if self.conversation_id is not None:
            messages, more = await database_sync_to_async(selectors.conversation_history_page)(
                self.conversation_id, after, max(1, settings.SOCKET_HISTORY_PAGE))
        for message in messages:
            await self.send_json({"type": "message", "message": message_payload(message)})
        last_seq = messages[-1].seq if messages else after
        self.replays.paged(last_seq, more)
        await self.send_json({"type": "resumed", "after_seq": after, "last_seq": last_seq, "more": more})

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
        transcript = frame.get("transcript")  # optional: the transcript mailed to her when it is resolved
        visitor = await database_sync_to_async(services.visitor_contact_leave)(
            self.conversation_id, frame.get("email"), transcript)
        await self.send_json({"type": "contact", "email": visitor.email,
                              **({"transcript": transcript} if transcript is not None else {})})

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
        """Who has the conversation, and whether a person could answer now (agents online; for a store with
        business hours, whether it is open and when it is back)."""
        self.status = status
        return {"status": status, **await database_sync_to_async(hours.availability)(self.tenant_id)}

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

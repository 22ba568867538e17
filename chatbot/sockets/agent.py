"""The agent websocket `/ws/agent/`: the console's (and stores' own tools') live channel.

Frames in, service calls, frames out; the protocol is in docs/agent-protocol.md. Every conversation and message is reached through chatbot.conversations.access,
so another tenant's ids answer `not_found` exactly like missing ones.
"""
import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from chatbot.conversations import access, ownership, presence, selectors, services

from chatbot.console import assist

from chatbot.sockets import realtime
from chatbot.sockets.base import SocketConsumer
from chatbot.errors import TRANSIENT_ERRORS, ServiceError
from chatbot.sockets.outages import LiveFeedGuard
from chatbot.conversations.payloads import agent_message_payload, conversation_payload
from chatbot.conversations.summary import handoff_summary

CLOSE_UNAUTHENTICATED = 4401
# The frames the console sends; each is handled by AgentConsumer._on_<type>.
FRAME_TYPES = ("inbox", "open", "read", "take_over", "hand_back", "resolve", "reassign", "message", "note", "feedback",
               "typing")

log = logging.getLogger(__name__)


def _inbox(user, tab: str, query: str) -> dict:
    """The `inbox` frame: a page of conversations and the exact count of each tab."""
    rows = selectors.inbox(user, tab, query)[: settings.AGENT_INBOX_LIMIT]
    return {"type": "inbox", "conversations": [conversation_payload(c) for c in rows], "tab": tab, "q": query,
            "counts": selectors.inbox_counts(user)}


def _open(user, conversation_id) -> dict:
    return _transcript(services.conversation_mark_read(user, conversation_id))


def _transcript(conversation) -> dict:
    """The `transcript` frame: the messages, the latest suggestions, and the hand-off summary."""
    messages = selectors.transcript(conversation.id)
    frame = {
        "type": "transcript",
        "conversation": conversation_payload(conversation),
        "messages": [agent_message_payload(m) for m in messages],
        "suggestions": assist.suggestions_latest(conversation),
    }
    summary = handoff_summary(conversation, messages)
    if summary is not None:
        frame["summary"] = summary
    return frame


def _resync(user, tab: str, query: str, conversation_id: int | None) -> list[dict]:
    """What the console shows, read afresh after live updates were interrupted: the `all` inbox (as at
    connect, marked `resync`), the tab it shows if another, and the open conversation's transcript
    (without marking it read: the agent may not be looking)."""
    frames = [{**_inbox(user, "all", ""), "resync": True}]
    if tab != "all" or query:
        frames.append({**_inbox(user, tab, query), "resync": True})
    if conversation_id is not None:
        try:
            conversation = access.access_conversation(user, conversation_id)
        except ServiceError:
            return frames
        frames.append(_transcript(conversation))
    return frames


def _tenant_ids(user) -> list[int]:
    return access.tenant_ids_of(user)


class AgentConsumer(LiveFeedGuard, SocketConsumer):
    """Stays up through a Redis outage (LiveFeedGuard): the agent is told, and the inbox is sent afresh
    when live updates are back; a database outage refuses frames with `unavailable` (OutageGuard)."""

    FRAME_TYPES = FRAME_TYPES
    ECHOED = ("message_id", "client_id", "conversation")  # what an error names of the frame it refuses
    user = None
    tenant_ids: list[int] = []
    tab, query, open_conversation = "all", "", None  # what the console shows: resent after an outage

    async def connect(self) -> None:
        realtime.remember_server_loop()
        await self.accept()
        user = self.scope.get("user")
        self.tenant_ids = await database_sync_to_async(_tenant_ids)(user) if user is not None else []
        if not self.tenant_ids:
            await self.refuse(ServiceError("Log in at /accounts/login/ as a member of a store's team.",
                                           "unauthenticated"), CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        await self.feed_join()  # with Redis away the socket opens all the same, and says so below
        await database_sync_to_async(presence.presence_join)(user, self.channel_name)
        self._heartbeat = asyncio.ensure_future(self._keep_present())
        await self._announce_presence()
        await self.send_json(await database_sync_to_async(_inbox)(user, "all", ""))
        await self._assign_waiting()
        if self.feed_down:
            await self.feed_lost()

    def feed_groups(self) -> list[str]:
        return [realtime.tenant_group(tenant_id) for tenant_id in self.tenant_ids]

    async def feed_lost(self, event: dict | None = None) -> None:
        if self.user is not None:
            await super().feed_lost(event)

    async def feed_restored(self, event: dict) -> None:
        """Live again: resend what the console shows (events published meanwhile are gone)."""
        await super().feed_restored(event)
        if self.user is None:
            return
        await self._announce_presence()
        for frame in await database_sync_to_async(_resync)(self.user, self.tab, self.query, self.open_conversation):
            await self.send_json(frame)

    async def disconnect(self, code: int) -> None:
        if self.user is None:
            return
        self._heartbeat.cancel()
        try:
            for group in self.feed_groups():
                await self.channel_layer.group_discard(group, self.channel_name)
        except TRANSIENT_ERRORS:
            pass  # Redis is away: its group entries expire (channels' group_expiry)
        await database_sync_to_async(presence.presence_leave)(self.channel_name)
        await self._announce_presence()

    async def _announce_presence(self) -> None:
        """Visitors waiting in these stores learn that a person came online (or that the last one left);
        best effort: with Redis away nobody would hear it, and their sockets reconnect anyway."""
        try:
            for tenant_id in self.tenant_ids:
                await self.channel_layer.group_send(realtime.visitors_group(tenant_id), realtime.PRESENCE_EVENT)
        except TRANSIENT_ERRORS as exc:
            log.info("could not announce presence: %r", exc)

    async def _assign_waiting(self) -> None:
        """She came online: hand-offs waiting in her stores may go to her or a colleague now (stores that assign
        automatically); with the database away the sweep does it later."""
        try:
            await database_sync_to_async(services.conversations_assign_waiting)(self.tenant_ids)
        except TRANSIENT_ERRORS as exc:
            log.warning("could not assign waiting conversations: %r", exc)

    async def _keep_present(self) -> None:
        while True:
            await asyncio.sleep(max(1, settings.AGENT_PRESENCE_TTL // 3))
            try:
                await database_sync_to_async(presence.presence_touch)(self.channel_name)
            except TRANSIENT_ERRORS as exc:  # the database is away: beat again next time
                log.warning("presence heartbeat failed: %r", exc)

    def frames_open(self) -> bool:
        return self.user is not None

    # Frames from the console.
    async def _on_inbox(self, frame: dict) -> None:
        tab = frame.get("tab", "all")
        if tab not in selectors.INBOX_TABS:
            raise ServiceError(f"`tab` must be one of {', '.join(selectors.INBOX_TABS)}.", "invalid_tab")
        query = frame.get("q", "")
        if not isinstance(query, str):
            raise ServiceError("`q` must be a string.", "invalid_query")
        self.tab, self.query = tab, query
        await self.send_json(await database_sync_to_async(_inbox)(self.user, tab, query))

    async def _on_open(self, frame: dict) -> None:
        transcript = await database_sync_to_async(_open)(self.user, frame.get("conversation"))
        self.open_conversation = transcript["conversation"]["id"]
        await self.send_json(transcript)

    async def _on_read(self, frame: dict) -> None:
        """The agent has seen the open conversation's new messages (no answer frame)."""
        await database_sync_to_async(services.conversation_mark_read)(self.user, frame.get("conversation"))

    async def _on_take_over(self, frame: dict) -> None:
        await self._send_conversation(ownership.conversation_take_over, frame)

    async def _on_hand_back(self, frame: dict) -> None:
        await self._send_conversation(ownership.conversation_hand_back, frame)

    async def _on_resolve(self, frame: dict) -> None:
        await self._send_conversation(ownership.conversation_resolve, frame)

    async def _on_reassign(self, frame: dict) -> None:
        conversation = await database_sync_to_async(ownership.conversation_reassign)(
            frame.get("conversation"), agent=self.user, to_user_id=frame.get("agent"))
        await self.send_json({"type": "conversation", "conversation": conversation_payload(conversation)})

    async def _on_message(self, frame: dict, private: bool = False) -> None:
        await self.send_json(await database_sync_to_async(_agent_send)(self.user, frame, private))

    async def _on_note(self, frame: dict) -> None:
        await self._on_message(frame, private=True)

    async def _on_feedback(self, frame: dict) -> None:
        feedback = await database_sync_to_async(services.feedback_agent_record)(
            self.user, frame.get("message_id"), frame.get("rating"), frame.get("correct_reply"),
            frame.get("correct_intent"),
        )
        await self.send_json({"type": "ack", "message_id": feedback.message_id, "feedback": {
            "rating": feedback.rating, "correct_reply": feedback.correction,
            "correct_intent": feedback.corrected_intent}})

    async def _on_typing(self, frame: dict) -> None:
        on = frame.get("on")
        if not isinstance(on, bool):
            raise ServiceError("`on` must be true or false.", "invalid_typing")
        await database_sync_to_async(_agent_typing)(self.user, frame.get("conversation"), on)

    async def _send_conversation(self, service, frame: dict) -> None:
        conversation = await database_sync_to_async(service)(frame.get("conversation"), agent=self.user)
        await self.send_json({"type": "conversation", "conversation": conversation_payload(conversation)})

    # Events from the tenants' groups.
    async def agent_message(self, event: dict) -> None:
        await self.send_json({"type": "message", "conversation": event["conversation"], "message": event["message"]})

    async def agent_conversation(self, event: dict) -> None:
        await self.send_json({"type": "conversation", "conversation": event["conversation"]})

    async def agent_typing(self, event: dict) -> None:
        await self.send_json({"type": "typing", "conversation": event["conversation"], "sender": event["sender"],
                              "on": event["on"]})

    async def agent_suggestions(self, event: dict) -> None:
        await self.send_json({"type": "suggestions", "conversation": event["conversation"],
                              "message_id": event["message_id"], "suggestions": event["suggestions"]})

    async def agent_feedback(self, event: dict) -> None:
        await self.send_json({"type": "feedback", "conversation": event["conversation"],
                              "message_id": event["message_id"], "feedback": event["feedback"]})

    async def agent_email(self, event: dict) -> None:
        await self.send_json({"type": "email", "conversation": event["conversation"],
                              "message_id": event["message_id"], "email_state": event["email_state"]})


def _agent_send(user, frame: dict, private: bool) -> dict:
    """Store the reply or note and build its ack in one trip to the database thread (the hot path of
    agents' replies: one hop instead of two)."""
    message, _ = services.agent_message_send(user, frame.get("conversation"), frame.get("text"),
                                             frame.get("client_id"), private=private,
                                             suggestion=frame.get("suggestion"))
    return {"type": "ack", "client_id": message.client_id, "conversation": message.conversation_id,
            "message": agent_message_payload(message)}


def _agent_typing(user, conversation_id, on: bool) -> None:
    conversation = access.access_conversation(user, conversation_id)
    services.typing_set(conversation.id, "agent", on, conversation.tenant_id)

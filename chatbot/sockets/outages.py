"""Sockets that say "unavailable" instead of dropping with 1011 when PostgreSQL or Redis is away.

A consumer that mixes in `OutageGuard` answers a frame whose service call met an outage
(chatbot.conversations.TRANSIENT_ERRORS) with `{"type":"error","code":"unavailable"}`, naming the message's
`client_id`: nothing was stored (a service writes in one transaction), and the widget sends it again
later with the same client_id. When the socket itself cannot go on (the channel layer's Redis is
gone, so no live updates; or the connect could not read the session) it says the same and closes
with 4503 (try again later): the client reconnects with back-off and resumes where it left off.
"""
import asyncio
import json
import logging

from chatbot.errors import TRANSIENT_ERRORS, ServiceError
from chatbot.sockets.base import error_frame

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
# 1013 (try again later) is what this means in RFC 6455 terms, but daphne's autobahn lets servers close
# with 1000 or 3000-4999 only: 4503, in the family of the widget's 4401 and 4403 (HTTP 503).
CLOSE_TRY_AGAIN = 4503
NOT_STORED = "The chat can't take messages right now. Yours is kept and sent again in a moment."
RECONNECT = "The chat is briefly unavailable. Reconnecting; nothing you send is lost."
FEED_LOST = ("Live updates are interrupted (the server lost its connection to Redis). Replies you send still "
             "go out; this page catches up by itself when live updates are back.")
FEED_RETRY_SECONDS = (0.5, 5.0)  # first and longest wait between two tries to rejoin the groups


def unavailable(detail: str, text: object = None) -> dict:
    """The `unavailable` error frame, naming the client_id of the frame in `text` (parsed once already, so
    bounded) when it had one: nothing of it was stored, and the client sends it again."""
    try:
        frame = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        frame = None
    return error_frame(ServiceError(detail, UNAVAILABLE), frame if isinstance(frame, dict) else None)


class OutageGuard:
    """Mix into a JSON websocket consumer, before the consumer class."""

    _outage_accepted = False

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except TRANSIENT_ERRORS as exc:
            log.warning("%s: closing a socket for an outage: %r", type(self).__name__, exc)
            await self._outage_close(send)

    async def accept(self, *args, **kwargs) -> None:
        await super().accept(*args, **kwargs)
        self._outage_accepted = True

    async def websocket_receive(self, message: dict) -> None:
        try:
            await super().websocket_receive(message)
        except TRANSIENT_ERRORS as exc:
            log.warning("%s: frame refused for an outage: %r", type(self).__name__, exc)
            await self.send_json(unavailable(NOT_STORED, message.get("text")))

    async def _outage_close(self, send) -> None:
        try:
            if self._outage_accepted:
                await send({"type": "websocket.send", "text": json.dumps(unavailable(RECONNECT))})
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
        except Exception:  # noqa: BLE001 - the socket goes anyway; say why it went the hard way
            log.warning("could not close a socket cleanly for an outage", exc_info=True)


class LiveFeedGuard(OutageGuard):
    """Mix into a consumer whose socket stays up while the channel layer's Redis is away (the agent
    console: its frames are database work that goes on without live updates).

    When receiving from the channel layer fails, the consumer gets a `feed.lost` event instead of the
    error (`feed_lost` tells the client once), then tries to rejoin `feed_groups()` with back-off; once
    it can, it gets `feed.restored` (`feed_restored` resends what the client shows: events published
    meanwhile are lost, and a restarted Redis forgot the group memberships). The property below wraps
    the receive function channels' AsyncConsumer.__call__ assigns, so its dispatch loop stays as is.
    """

    feed_down = False
    _feed_told = False

    @property
    def channel_receive(self):
        return self._feed_receive

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        self._raw_channel_receive = receive

    def feed_groups(self) -> list[str]:
        """The groups the socket listens to (rejoined after an outage)."""
        return []

    async def feed_join(self) -> bool:
        """Join `feed_groups()`; False (and the feed marked down, to be rejoined) when Redis is away."""
        try:
            for group in self.feed_groups():
                await self.channel_layer.group_add(group, self.channel_name)
        except TRANSIENT_ERRORS as exc:
            log.warning("%s: live feed unavailable: %r", type(self).__name__, exc)
            self.feed_down = True
            return False
        return True

    async def _feed_receive(self) -> dict:
        if self.feed_down:
            delay = FEED_RETRY_SECONDS[0]
            while True:
                await asyncio.sleep(delay)
                if await self.feed_join():
                    break
                delay = min(delay * 2, FEED_RETRY_SECONDS[1])
            self.feed_down = False
            log.info("%s: live feed back", type(self).__name__)
            return {"type": "feed.restored"}
        try:
            return await self._raw_channel_receive()
        except TRANSIENT_ERRORS as exc:
            log.warning("%s: live feed lost: %r", type(self).__name__, exc)
            self.feed_down = True
            return {"type": "feed.lost"}

    async def feed_lost(self, event: dict | None = None) -> None:
        """Tell the client once per outage (an `unavailable` error naming no message)."""
        if self._outage_accepted and not self._feed_told:
            self._feed_told = True
            await self.send_json(unavailable(FEED_LOST))

    async def feed_restored(self, event: dict) -> None:
        self._feed_told = False

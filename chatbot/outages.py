"""Sockets that say "unavailable" instead of dropping with 1011 when PostgreSQL or Redis is away.

A consumer that mixes in `OutageGuard` answers a frame whose service call met an outage
(chatbot.delivery.TRANSIENT_ERRORS) with `{"type":"error","code":"unavailable"}`, naming the message's
`client_id`: nothing was stored (a service writes in one transaction), and the widget sends it again
later with the same client_id. When the socket itself cannot go on (the channel layer's Redis is
gone, so no live updates; or the connect could not read the session) it says the same and closes
with 4503 (try again later): the client reconnects with back-off and resumes where it left off.
"""
import json
import logging

from . import delivery

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
# 1013 (try again later) is what this means in RFC 6455 terms, but daphne's autobahn lets servers close
# with 1000 or 3000-4999 only: 4503, in the family of the widget's 4401 and 4403 (HTTP 503).
CLOSE_TRY_AGAIN = 4503
NOT_STORED = "The chat can't take messages right now. Yours is kept and sent again in a moment."
RECONNECT = "The chat is briefly unavailable. Reconnecting; nothing you send is lost."


def _message_client_id(text: object) -> str | None:
    """The client_id of a `message` frame, if `text` is one (it was parsed once already: it is bounded)."""
    try:
        frame = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        return None
    client_id = frame.get("client_id") if isinstance(frame, dict) and frame.get("type") == "message" else None
    return client_id if isinstance(client_id, str) and len(client_id) <= 200 else None


class OutageGuard:
    """Mix into a JSON websocket consumer, before the consumer class."""

    _outage_accepted = False

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except delivery.TRANSIENT_ERRORS as exc:
            log.warning("%s: closing a socket for an outage: %r", type(self).__name__, exc)
            await self._outage_close(send)

    async def accept(self, *args, **kwargs) -> None:
        await super().accept(*args, **kwargs)
        self._outage_accepted = True

    async def websocket_receive(self, message: dict) -> None:
        try:
            await super().websocket_receive(message)
        except delivery.TRANSIENT_ERRORS as exc:
            log.warning("%s: frame refused for an outage: %r", type(self).__name__, exc)
            frame = {"type": "error", "code": UNAVAILABLE, "detail": NOT_STORED}
            client_id = _message_client_id(message.get("text"))
            if client_id:
                frame["client_id"] = client_id
            await self.send_json(frame)

    async def _outage_close(self, send) -> None:
        try:
            if self._outage_accepted:
                frame = {"type": "error", "code": UNAVAILABLE, "detail": RECONNECT}
                await send({"type": "websocket.send", "text": json.dumps(frame)})
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
        except Exception:  # noqa: BLE001 - the socket goes anyway; say why it went the hard way
            log.warning("could not close a socket cleanly for an outage", exc_info=True)

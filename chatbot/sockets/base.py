"""What the widget and agent websockets share: reading a frame, answering with an error frame, bounding replays.

A consumer built on `SocketConsumer` lists its frame types and writes one `_on_<type>` handler each; the base
refuses what cannot be read (size, depth, JSON, Unicode), unknown types, and any `ServiceError` a handler
raises, each with the one error frame `error_frame` builds.
"""
import json
import math
import re
import time
from collections import deque

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from chatbot.errors import ServiceError
from chatbot.sockets import ratelimit

# A field whose text no database can store is refused with its own code; any other with invalid_frame.
FIELD_CODES = {"text": "invalid_text", "client_id": "invalid_client_id"}
# An error frame names the client_id of the frame it answers only when it is at most this long.
CLIENT_ID_ECHO_MAX = 200
# Used when SOCKET_REPLAYS is not a valid [count, seconds].
REPLAYS_FALLBACK = (5, 60)
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

    At most SOCKET_MAX_FRAME_SIZE characters (bytes for binary frames), JSON nested at most
    SOCKET_MAX_JSON_DEPTH deep (checked before parsing, so nothing recurses), and text the database can store.
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


def echo_client_id(value: object) -> str | None:
    """The client_id an error frame names (None when `value` is no usable one): the client matches the
    error to the message it refuses by it, so it is echoed only as a string of sensible length."""
    return value if isinstance(value, str) and 0 < len(value) <= CLIENT_ID_ECHO_MAX else None


def error_frame(error: ServiceError, about: dict | None = None, fields: tuple[str, ...] = ("client_id",)) -> dict:
    """The `error` frame for any error of the family (its `code` and `detail`), naming what it answers.

    `fields` are copied from `about` (the frame refused) so the client knows which of its requests
    failed: `client_id` by `echo_client_id`, any other (ids) when it is an integer. An error that says
    when to try again (`retry_after`, the rate limiter's) passes that on.
    """
    frame = {"type": "error", "code": error.code, "detail": getattr(error, "detail", None) or str(error)}
    for name in fields:
        value = (about or {}).get(name)
        value = echo_client_id(value) if name == "client_id" else value if isinstance(value, int) else None
        if value is not None:
            frame[name] = value
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return frame


def replay_rule() -> ratelimit.Rule | None:
    """SOCKET_REPLAYS as a rule (None: no limit); a value that is not [count, seconds] falls back to 5 per 60 s."""
    value = settings.SOCKET_REPLAYS
    if value is None:
        return None
    valid = (isinstance(value, (list, tuple)) and len(value) == 2
             and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
    return ratelimit.Rule("socket_replays", *(value if valid else REPLAYS_FALLBACK))


class ReplayBudget:
    """The history replays one socket may start per window (a sliding one, kept in the socket's memory).

    A replay sends a page of history; the page that continues one which said `more` (asked for with the
    `last_seq` it ended at) is part of the same replay and free, so a long history arrives whole while
    asking again and again from the start is refused.
    """

    def __init__(self, rule: ratelimit.Rule | None):
        self.rule = rule
        self.started: deque[float] = deque()
        self.continue_at: int | None = None  # the after_seq of the page that continues the last one

    def continues(self, after_seq: object) -> bool:
        return self.continue_at is not None and type(after_seq) is int and after_seq == self.continue_at

    def check(self) -> None:
        """Raise ratelimit.Limited (code rate_limited, with retry_after) when no new replay may start now."""
        if self.rule is None:
            return
        now = time.monotonic()
        while self.started and self.started[0] <= now - self.rule.window:
            self.started.popleft()
        if len(self.started) >= self.rule.limit:
            raise ratelimit.Limited(self.rule, max(1, math.ceil(self.started[0] + self.rule.window - now)))

    def start(self) -> None:
        self.started.append(time.monotonic())

    def paged(self, last_seq: int, more: bool) -> None:
        """A page was sent: the next one, if any, starts after `last_seq`."""
        self.continue_at = last_seq if more else None


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


class SocketConsumer(DirectDispatch, AsyncJsonWebsocketConsumer):
    """A JSON websocket that reads every frame the same way and answers every refusal with `error_frame`.

    Subclasses set FRAME_TYPES (each handled by `_on_<type>`), ECHOED (the fields of a refused frame its
    error names) and `frames_open()` (frames before the connect was accepted are ignored).
    """

    FRAME_TYPES: tuple[str, ...] = ()
    ECHOED: tuple[str, ...] = ("client_id",)

    def frames_open(self) -> bool:
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.frames_open():
            return
        try:
            frame = frame_parse(text_data, bytes_data)
        except FrameRefused as exc:
            await self.send_error(exc, {"client_id": exc.client_id}, ("client_id",))
            return
        if frame["type"] not in self.FRAME_TYPES:
            await self.send_error(ServiceError(f"Unknown frame type {frame['type'][:40]!r}.", "unknown_type"))
            return
        try:
            await self.before_frame(frame)
            await getattr(self, f"_on_{frame['type']}")(frame)
        except ServiceError as exc:
            # The error names the frame's client_id (and ids) when it carried them, so the client knows
            # which of its messages was refused; errors about other frames name none.
            await self.send_error(exc, frame, self.ECHOED)

    async def before_frame(self, frame: dict) -> None:
        """Called before the frame's handler (e.g. to rate-limit it); a ServiceError refuses the frame."""

    async def send_error(self, error: ServiceError, about: dict | None = None, fields: tuple[str, ...] = ()) -> None:
        await self.send_json(error_frame(error, about, fields))

    async def refuse(self, error: ServiceError, close_code: int) -> None:
        """Refuse the connect: say why in an error frame, then close with `close_code`."""
        await self.send_error(error)
        await self.close(code=close_code)

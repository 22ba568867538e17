"""Whether a visitor has the chat open: a widget socket of her conversation, seen in the last
VISITOR_PRESENCE_TTL seconds. An agent's reply to a visitor with none is e-mailed (chatbot.mail.outbound).

Channel-layer group membership cannot tell: channels_redis keeps a member of a dead web process for its
group expiry (a day). So each widget socket that joins a conversation is recorded here, in a Redis sorted set
per conversation whose scores are expiry times, refreshed by one task per event loop every third of the TTL
for all of its sockets (one round trip, whatever their number), and removed when the socket closes. A web
process that dies without saying goodbye stops refreshing: its sockets count as gone within the TTL.
Without REDIS_URL the one process knows its own sockets.

The widget consumer calls `visitor_joined` and `visitor_left`; neither ever raises: a Redis that is away
costs the refresh, not the socket (and a visitor whose presence cannot be read counts as away, so a reply is
e-mailed rather than lost).
"""
import asyncio
import logging
import time
import weakref

from django.conf import settings
from redis.exceptions import RedisError

from chatbot import redis_clients
from chatbot.mail import kv

log = logging.getLogger(__name__)

REDIS_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
REFRESH_BATCH = 500  # sockets per pipeline

# This process's open widget sockets: channel name -> (conversation id, the event loop serving it).
_open: dict[str, tuple[int, asyncio.AbstractEventLoop]] = {}
_refreshers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = weakref.WeakKeyDictionary()


def _key(conversation_id: int) -> str:
    return kv.key("visitor", conversation_id)


def _ttl() -> int:
    return max(3, settings.VISITOR_PRESENCE_TTL)


async def visitor_joined(conversation_id: int, channel_name: str) -> None:
    """A widget socket shows `conversation_id` from now on."""
    loop = asyncio.get_running_loop()
    _open[channel_name] = (conversation_id, loop)
    if kv.shared():
        task = _refreshers.get(loop)
        if task is None or task.done():
            _refreshers[loop] = loop.create_task(_refresh(loop))
        try:
            await _mark([(conversation_id, channel_name)])
        except REDIS_FAILURES as exc:  # the refresher tries again
            log.warning("could not record a visitor's presence: %r", exc)


async def visitor_left(conversation_id: int, channel_name: str) -> None:
    """The widget socket closed."""
    loop = asyncio.get_running_loop()
    _open.pop(channel_name, None)
    if not any(held is loop for _, held in list(_open.values())):
        task = _refreshers.pop(loop, None)
        if task is not None:
            task.cancel()
    if kv.shared():
        try:
            await redis_clients.async_client().zrem(_key(conversation_id), channel_name)
        except REDIS_FAILURES as exc:  # it expires within the TTL
            log.warning("could not clear a visitor's presence: %r", exc)


def visitor_connected(conversation_id: int) -> bool:
    """Whether a widget socket of the conversation is open now (sync: services call it). A presence that
    cannot be read counts as away: a reply e-mailed to a visitor who also sees it live costs less than a lost one."""
    if not kv.shared():
        return any(held == conversation_id for held, _ in list(_open.values()))
    try:
        return redis_clients.sync_client().zcount(_key(conversation_id), time.time(), "+inf") > 0
    except (RedisError, OSError) as exc:
        log.warning("visitor presence unknown (%r): counted as away", exc)
        return False


async def _mark(entries: list[tuple[int, str]]) -> None:
    """Record the sockets as present for another TTL, and drop their conversations' expired members."""
    now = time.time()
    ttl = _ttl()
    pipe = redis_clients.async_client().pipeline(transaction=False)
    for conversation_id, channel_name in entries:
        key = _key(conversation_id)
        pipe.zadd(key, {channel_name: now + ttl})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.expire(key, ttl * 2)
    await pipe.execute()


async def _refresh(loop: asyncio.AbstractEventLoop) -> None:
    """Every third of the TTL, refresh every socket this loop serves; ends with the last of them."""
    while True:
        await asyncio.sleep(_ttl() / 3)
        entries = [(conversation_id, channel) for channel, (conversation_id, held) in list(_open.items())
                   if held is loop]
        if not entries:
            _refreshers.pop(loop, None)
            return
        for start in range(0, len(entries), REFRESH_BATCH):
            try:
                await _mark(entries[start:start + REFRESH_BATCH])
            except REDIS_FAILURES as exc:
                log.warning("could not refresh visitors' presence: %r", exc)
                break

"""A few short-lived keys every process shares: in Redis, or in this process's memory without REDIS_URL
(one-process mode, where this process is the only one).

Used for what needs no row of its own: which visitors have a widget socket open (chatbot.mail.presence) and
which hand-off notices went out (chatbot.mail.notify). Redis calls are bounded by short timeouts; callers
decide what a failure means for them.
"""
import asyncio
import threading
import time
import weakref

from django.conf import settings

_lock = threading.Lock()
_sync_client = None
# One asyncio client per event loop: redis.asyncio connections belong to the loop that opened them.
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, object]]" = weakref.WeakKeyDictionary()
# Without Redis: key -> (expires at, value).
_memory: dict[str, tuple[float, object]] = {}

TIMEOUT = 0.5  # seconds: a Redis that does not answer by then counts as away


def shared() -> bool:
    """Whether the keys live in Redis (every process sees them) rather than in this process."""
    return bool(settings.REDIS_URL)


def key(*parts: object) -> str:
    """A key under this deployment's channel prefix (CHANNELS_PREFIX), so deployments can share a Redis."""
    prefix = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {}).get("prefix", "asgi")
    return ":".join([prefix, "mail", *map(str, parts)])


def client():
    """This process's Redis client (sync)."""
    global _sync_client
    with _lock:
        if _sync_client is None or _sync_client[0] != settings.REDIS_URL:
            import redis

            _sync_client = (settings.REDIS_URL, redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT))
        return _sync_client[1]


def async_client():
    """The Redis client of the running event loop."""
    loop = asyncio.get_running_loop()
    url, found = _async_clients.get(loop, ("", None))
    if found is None or url != settings.REDIS_URL:
        import redis.asyncio as aioredis

        found = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        _async_clients[loop] = (settings.REDIS_URL, found)
    return found


# --- this process's memory (no REDIS_URL) -------------------------------------------------------------


def memory_add(name: str, value: object, ttl: float) -> bool:
    """Set `name` unless it is set (and not expired); True when this call set it."""
    now = time.monotonic()
    with _lock:
        if len(_memory) > 100_000:
            for stale in [k for k, (expires, _) in _memory.items() if expires <= now]:
                del _memory[stale]
        held = _memory.get(name)
        if held is not None and held[0] > now:
            return False
        _memory[name] = (now + ttl, value)
        return True


def memory_delete(name: str) -> None:
    with _lock:
        _memory.pop(name, None)


def memory_reset() -> None:
    """Forget every key kept in memory (tests)."""
    with _lock:
        _memory.clear()

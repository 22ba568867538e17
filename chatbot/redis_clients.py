"""This process's Redis clients for short calls that must not wait on a Redis that does not answer: the rate
limits, the order look-up limits, visitors' presence and the hand-off notices' claims. One sync client, and
one asyncio client per event loop (redis.asyncio connections belong to the loop that opened them); calls time
out after TIMEOUT, and each caller decides what a failure means for it."""
import asyncio
import threading
import weakref

from django.conf import settings

TIMEOUT = 0.5  # seconds: a Redis that does not answer by then counts as away

_lock = threading.Lock()
_sync: tuple[str, object] | None = None
_async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, object]]" = weakref.WeakKeyDictionary()


def sync_client():
    """This process's sync client of REDIS_URL (made anew when the setting changes, as in tests)."""
    global _sync
    with _lock:
        if _sync is None or _sync[0] != settings.REDIS_URL:
            import redis

            _sync = (settings.REDIS_URL, redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT))
        return _sync[1]


def async_client():
    """The running event loop's asyncio client of REDIS_URL."""
    loop = asyncio.get_running_loop()
    url, client = _async.get(loop, ("", None))
    if client is None or url != settings.REDIS_URL:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                         health_check_interval=30)
        _async[loop] = (settings.REDIS_URL, client)
    return client

"""A few short-lived keys every process shares: in Redis, or in this process's memory without REDIS_URL
(one-process mode, where this process is the only one).

Used for what needs no row of its own: which visitors have a widget socket open (chatbot.mail.presence) and
which hand-off notices went out (chatbot.mail.notify). In Redis through chatbot.redis_clients (short
timeouts; callers decide what a failure means for them).
"""
import threading
import time

from django.conf import settings

_lock = threading.Lock()
# Without Redis: key -> (expires at, value).
_memory: dict[str, tuple[float, object]] = {}


def shared() -> bool:
    """Whether the keys live in Redis (every process sees them) rather than in this process."""
    return bool(settings.REDIS_URL)


def key(*parts: object) -> str:
    """A key under this deployment's channel prefix (CHANNELS_PREFIX), so deployments can share a Redis."""
    prefix = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {}).get("prefix", "asgi")
    return ":".join([prefix, "mail", *map(str, parts)])


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

"""Unmatched order look-ups, counted per visitor and per address so order numbers cannot be enumerated.

A look-up the store answered not_found or forbidden is a miss. Past ACTIONS_MISSES_PER_VISITOR or
ACTIONS_MISSES_PER_IP in their windows, the bot stops looking orders up for that visitor (or anyone
writing from that address) and a person takes over. Counted in Redis, shared by every worker; in the
process's memory without REDIS_URL (one-process mode) or while Redis fails.
"""
import logging
import threading
import time

from django.conf import settings
from redis.exceptions import RedisError

from chatbot.redis_clients import sync_client

log = logging.getLogger(__name__)
_memory: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()


def _rules() -> list[tuple[str, int, int]]:
    rules = []
    for name, value in (("visitor", settings.ACTIONS_MISSES_PER_VISITOR), ("ip", settings.ACTIONS_MISSES_PER_IP)):
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
            rules.append((name, value[0], value[1]))
    return rules


def _keys(subjects: dict[str, str]) -> list[tuple[str, int, int]]:
    """(key, limit, window) of each rule whose subject is known, in the current window."""
    now = time.time()
    return [(f"{settings.RATE_LIMIT_PREFIX}:order_misses:{name}:{subjects[name]}:{int(now // window)}", limit, window)
            for name, limit, window in _rules() if subjects.get(name)]


def misses_over(subjects: dict[str, str]) -> bool:
    """Whether the visitor (`subjects["visitor"]`) or her address (`subjects["ip"]`) has used up its misses."""
    keys = _keys(subjects)
    if not keys:
        return False
    counts = None
    if settings.REDIS_URL:
        try:
            counts = [int(v or 0) for v in sync_client().mget([k for k, _, _ in keys])]
        except (RedisError, OSError) as exc:
            log.warning("order look-up limits fall back to process memory: Redis failed (%s)", type(exc).__name__)
    if counts is None:
        with _lock:
            now = time.time()
            counts = [c if expires > now else 0 for expires, c in (_memory.get(k, (0.0, 0)) for k, _, _ in keys)]
    return any(count >= limit for count, (_, limit, _) in zip(counts, keys))


def miss_count(subjects: dict[str, str]) -> None:
    """Count one unmatched look-up against the visitor and her address."""
    keys = _keys(subjects)
    if settings.REDIS_URL:
        try:
            pipe = sync_client().pipeline()
            for key, _, window in keys:
                pipe.incr(key)
                pipe.expire(key, window + 1)
            pipe.execute()
            return
        except (RedisError, OSError) as exc:
            log.warning("order look-up limits fall back to process memory: Redis failed (%s)", type(exc).__name__)
    with _lock:
        now = time.time()
        for key, _, window in keys:
            expires, count = _memory.get(key, (0.0, 0))
            _memory[key] = (expires, count + 1) if expires > now else (now + window, 1)


def reset_memory() -> None:
    """Forget the in-memory counts (tests)."""
    _memory.clear()

"""Unmatched order look-ups, counted per visitor and per address so order numbers cannot be enumerated.

A look-up the store answered not_found or forbidden is a miss. Past ACTIONS_MISSES_PER_VISITOR or
ACTIONS_MISSES_PER_IP in their windows, the bot stops looking orders up for that visitor (or anyone
writing from that address) and a person takes over. Counted in Redis, shared by every worker; in the
process's memory without REDIS_URL (one-process mode) or while Redis fails.
"""
import logging
import time

from django.conf import settings
from redis.exceptions import RedisError

from chatbot.redis_clients import sync_client
from chatbot.sockets.ratelimit import MemoryCounter, Rule, window_keys

log = logging.getLogger(__name__)
_memory = MemoryCounter()


def _keyed(subjects: dict[str, str]) -> list[tuple[Rule, str]]:
    """Each rule whose subject is known, with its counter's key in the current window (the rate limits' keys)."""
    checks = []
    for name, value in (("visitor", settings.ACTIONS_MISSES_PER_VISITOR), ("ip", settings.ACTIONS_MISSES_PER_IP)):
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
            if subjects.get(name):
                checks.append((Rule(f"{name}_order_misses", value[0], value[1]), subjects[name]))
    return window_keys(checks, time.time())


def misses_over(subjects: dict[str, str]) -> bool:
    """Whether the visitor (`subjects["visitor"]`) or her address (`subjects["ip"]`) has used up its misses."""
    keyed = _keyed(subjects)
    if not keyed:
        return False
    if settings.REDIS_URL:
        try:
            counts = [int(v or 0) for v in sync_client().mget([key for _, key in keyed])]
            return any(count >= rule.limit for count, (rule, _) in zip(counts, keyed))
        except (RedisError, OSError) as exc:
            log.warning("order look-up limits fall back to process memory: Redis failed (%s)", type(exc).__name__)
    return _memory.over(keyed, time.time())


def miss_count(subjects: dict[str, str]) -> None:
    """Count one unmatched look-up against the visitor and her address."""
    keyed = _keyed(subjects)
    if settings.REDIS_URL:
        try:
            pipe = sync_client().pipeline()
            for rule, key in keyed:
                pipe.incr(key)
                pipe.expire(key, rule.window + 1)
            pipe.execute()
            return
        except (RedisError, OSError) as exc:
            log.warning("order look-up limits fall back to process memory: Redis failed (%s)", type(exc).__name__)
    _memory.add(keyed, time.time())


def reset_memory() -> None:
    """Forget the in-memory counts (tests)."""
    global _memory
    _memory = MemoryCounter()

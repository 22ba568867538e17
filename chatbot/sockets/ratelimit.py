"""Rate limits shared by every web process: fixed-window counters in Redis, in memory without REDIS_URL.

A request names its rules and subjects, e.g. [(visitor_messages, token), (ip_messages, ip),
(tenant_messages, tenant id)]; one atomic Redis call checks them all and counts the request in
each only when none is over its limit, so a refused request costs nothing against the others.
Counters live in Redis, keyed by rule, subject and window, so reconnecting resets nothing and
every web process sees the same counts. When Redis fails, the process falls back to counting in
its own memory (still a limit, per process) rather than refusing everyone or nobody.

Rules come from settings.RATE_LIMITS ({name: [limit, window seconds]}, a null entry turns a rule
off); a tenant's `rate_limits` overrides them for its own visitors.
"""
import asyncio
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from chatbot.errors import RateLimited
from chatbot.redis_clients import async_client

log = logging.getLogger(__name__)

# The rules a request may name; anything else in settings or a tenant's overrides is ignored.
RULES = (
    "visitor_messages", "ip_messages", "tenant_messages",  # message frames
    "visitor_frames", "ip_frames",  # feedback, csat, contact, typing
    "visitor_resumes",  # resume frames (each also bounded in what it sends)
    "ip_connects", "tenant_connects",  # widget connects
)

# Checks every key before counting any: a refused request counts in none of them.
_SCRIPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[2 * i])
end
return 0
"""


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window: int  # seconds


class Limited(RateLimited):
    """A refused request; `retry_after` is the number of seconds until the window that refused it ends."""

    def __init__(self, rule: Rule, retry_after: int):
        super().__init__(f"Too many requests; try again in {retry_after} s "
                         f"(limit {rule.limit} per {rule.window} s).")
        self.rule = rule
        self.retry_after = retry_after


def _parse(value) -> tuple[int, int] | None:
    """[limit, window] with whole numbers of 1 or more, else None (the entry is ignored)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    limit, window = value
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (limit, window)):
        return None
    return limit, min(window, 86400)


def rules_for(overrides: dict | None = None) -> dict[str, Rule]:
    """The rules in force for a tenant: settings.RATE_LIMITS, then the tenant's own valid overrides."""
    merged = {}
    for source in (settings.RATE_LIMITS, overrides if isinstance(overrides, dict) else {}):
        for name, value in source.items():
            if name not in RULES:
                continue
            if value is None:
                merged.pop(name, None)
            elif (parsed := _parse(value)) is not None:
                merged[name] = Rule(name, *parsed)
    return merged


def client_ip(scope: dict) -> str:
    """The client's address: the ASGI peer, or X-Forwarded-For as set by RATE_LIMIT_TRUSTED_PROXIES proxies."""
    proxies = settings.RATE_LIMIT_TRUSTED_PROXIES
    if proxies > 0:
        for name, value in scope.get("headers", []):
            if name.lower() == b"x-forwarded-for":
                hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                if hops:
                    return hops[max(0, len(hops) - proxies)][:64]
    client = scope.get("client")
    return str(client[0])[:64] if client else ""


def window_keys(checks: list[tuple[Rule, str]], now: float) -> list[tuple[Rule, str]]:
    """Each (rule, subject) with its counter's key in the window `now` falls in (chatbot.actions.limits counts
    unmatched order look-ups with the same keys and counter)."""
    prefix = settings.RATE_LIMIT_PREFIX
    return [(rule, f"{prefix}:{rule.name}:{subject}:{int(now // rule.window)}") for rule, subject in checks]


def _retry_after(rule: Rule, now: float) -> int:
    return max(1, math.ceil(rule.window - now % rule.window))


# --- counting in memory (one-process mode, and when Redis fails) ----------------------------------


class MemoryCounter:
    """Fixed-window counters in this process's memory, for (rule, key) pairs as window_keys makes them."""

    def __init__(self, max_keys: int = 100_000):
        self.counts: dict[str, tuple[float, int]] = {}  # key -> (expires at, count)
        self.lock = threading.Lock()
        self.max_keys = max_keys

    def hit(self, keyed: list[tuple[Rule, str]], now: float) -> int:
        """Count one request in every key unless one is full; the 1-based place of the full one, else 0."""
        with self.lock:
            full = self._full(keyed, now)
            if not full:
                self._add(keyed, now)
            return full

    def over(self, keyed: list[tuple[Rule, str]], now: float) -> bool:
        """Whether any of the keys is full (nothing counted)."""
        with self.lock:
            return bool(self._full(keyed, now))

    def add(self, keyed: list[tuple[Rule, str]], now: float) -> None:
        """Count one in every key, full or not."""
        with self.lock:
            self._add(keyed, now)

    def _full(self, keyed: list[tuple[Rule, str]], now: float) -> int:
        for i, (rule, key) in enumerate(keyed, 1):
            expires, count = self.counts.get(key, (0.0, 0))
            if expires > now and count >= rule.limit:
                return i
        return 0

    def _add(self, keyed: list[tuple[Rule, str]], now: float) -> None:
        if len(self.counts) > self.max_keys:
            self.counts = {k: v for k, v in self.counts.items() if v[0] > now}
        for rule, key in keyed:
            expires, count = self.counts.get(key, (0.0, 0))
            if expires <= now:
                expires, count = now + rule.window, 0
            self.counts[key] = (expires, count + 1)


_memory = MemoryCounter()


# --- counting in Redis ---------------------------------------------------------------------------

# The counting script, registered once per client (chatbot.redis_clients: one per event loop).
_scripts: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()
_warned_at = 0.0


def _script():
    client = async_client()
    script = _scripts.get(client)
    if script is None:
        script = _scripts[client] = client.register_script(_SCRIPT)
    return script


async def _redis_hit(keyed: list[tuple[Rule, str]], now: float) -> int:
    args = []
    for rule, _ in keyed:
        args += [rule.limit, rule.window + 1]
    return int(await _script()(keys=[key for _, key in keyed], args=args))


async def hit(checks: list[tuple[Rule | None, str]]) -> None:
    """Count one request against each (rule, subject); raise Limited (nothing counted) when one is full.

    A check whose rule is None (turned off) or whose subject is empty (e.g. no client address) is skipped.
    """
    global _warned_at
    checks = [(rule, subject) for rule, subject in checks if rule is not None and subject]
    if not checks:
        return
    now = time.time()
    keyed = window_keys(checks, now)
    refused = 0
    if settings.REDIS_URL:
        try:
            refused = await _redis_hit(keyed, now)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:  # limit in this process's memory instead
            if now - _warned_at > 60:
                _warned_at = now
                log.warning("rate limits fall back to process memory: Redis failed (%s)", type(exc).__name__)
            refused = _memory.hit(keyed, now)
    else:
        refused = _memory.hit(keyed, now)
    if refused:
        rule = keyed[refused - 1][0]
        raise Limited(rule, _retry_after(rule, now))


def reset_memory() -> None:
    """Forget the in-memory counts (tests)."""
    global _memory
    _memory = MemoryCounter()

"""Promotions and corrections heard by every process, so workers switch without restart or a query per message.

The process that promotes a version (or records an agent's correction) hears the domain event on commit
(chatbot.events) and forgets what it cached at once; it also publishes the event on a Redis channel. Each
process that serves models listens on that channel in a daemon thread of its own, started on its first
model lookup (inference.registry), so in a Celery prefork pool it is the child that holds the models
that listens. A listener that (re)subscribes forgets everything it cached: whatever was published
while it was away is read again. Without REDIS_URL there is one process and the domain event is enough.
The slow poll (settings.MODEL_POLL_SECONDS) covers a publish that failed.
"""
import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings

from chatbot import events

log = logging.getLogger(__name__)

_lock = threading.Lock()
_listening_pid: int | None = None  # the process whose listener runs (a forked child starts its own)
_subscribed = threading.Event()
_client = None  # the publishing connection, with the pid it was made in
_client_pid: int | None = None
_origin = ""
# What each kind of payload makes stale, registered by the modules that cache it (inference.registry,
# inference.corrections) when they are imported: a module never imported here cached nothing.
RESYNC = "resync"  # this process was not listening for a while: anything may have changed
_handlers: dict[str, list[Callable[[dict], None]]] = defaultdict(list)


def handle(payload_type: str, handler: Callable[[dict], None]) -> None:
    """Call `handler(payload)` for every payload of `payload_type` heard here or emitted by this process."""
    if handler not in _handlers[payload_type]:
        _handlers[payload_type].append(handler)


def channel() -> str:
    """The Redis channel of this deployment (its channel-layer prefix: parallel test runs stay apart)."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}:model-events"


def origin() -> str:
    """This process's tag on what it publishes: it handled its own events already."""
    global _origin
    pid = str(os.getpid())
    if not _origin.startswith(pid + "-"):
        _origin = f"{pid}-{uuid.uuid4().hex[:8]}"
    return _origin


# --- this process's side: domain events (subscribed in inference.apps) --------------------------------


def on_model_promoted(event: dict) -> None:
    """A version was promoted or rolled back here: forget the active version now, tell the others."""
    apply({"type": events.MODEL_PROMOTED, "kind": event.get("kind"), "tenant": event.get("tenant")})
    publish({"type": events.MODEL_PROMOTED, "kind": event.get("kind"), "tenant": event.get("tenant"),
             "id": event.get("id"), "action": event.get("action")})


def on_feedback_recorded(event: dict) -> None:
    """An agent corrected (or rated) a reply here: the tenant's correction memory is read again."""
    apply({"type": events.FEEDBACK_RECORDED, "tenant": event.get("tenant")})
    publish({"type": events.FEEDBACK_RECORDED, "tenant": event.get("tenant")})


def apply(payload: dict) -> None:
    """Forget what the payload makes stale in this process, through the handlers registered for it."""
    for handler in list(_handlers[payload.get("type")]):
        handler(payload)


def publish(payload: dict) -> bool:
    """Tell the other processes; False (logged) when Redis is away: their poll catches up."""
    if not settings.REDIS_URL:
        return False
    try:
        _redis().publish(channel(), json.dumps(payload | {"origin": origin()}))
        return True
    except Exception:  # noqa: BLE001 - the write is committed; the others' poll will notice it
        log.warning("could not broadcast %s; other processes see it within %s s",
                    payload.get("type"), settings.MODEL_POLL_SECONDS, exc_info=True)
        return False


def _redis():
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():  # a connection is not shared across a fork
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _client_pid = os.getpid()
    return _client


# --- the other processes' side: the listener ----------------------------------------------------------


def ensure_listening() -> None:
    """Start this process's listener once (cheap on every call after the first)."""
    global _listening_pid
    pid = os.getpid()
    if _listening_pid == pid:
        return
    with _lock:
        if _listening_pid == pid:
            return
        _listening_pid = pid
        _subscribed.clear()  # a forked child inherits the flag, not the thread
        if not settings.REDIS_URL:
            return
        thread = threading.Thread(target=_listen, args=(settings.REDIS_URL, channel()), name="model-watch",
                                  daemon=True)
        thread.start()


def wait_subscribed(timeout: float) -> bool:
    """Whether this process's listener is subscribed (waiting up to `timeout` s)."""
    return _subscribed.wait(timeout)


def _listen(url: str, name: str) -> None:
    import redis

    delay = 0.5
    while True:
        pubsub = None
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
            pubsub = client.pubsub()
            pubsub.subscribe(name)
            while True:
                message = pubsub.get_message(timeout=5.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    _resubscribed()
                    delay = 0.5
                elif message["type"] == "message":
                    _heard(message["data"])
        except Exception:  # noqa: BLE001 - Redis away: try again, and forget everything once back
            _subscribed.clear()
            log.warning("model broadcast listener lost Redis; retrying in %.1f s", delay, exc_info=True)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001
                    pass


def _resubscribed() -> None:
    apply({"type": RESYNC})
    _subscribed.set()
    log.info("listening for model promotions on %s (pid %s)", channel(), os.getpid())


def _heard(data: bytes | str) -> None:
    try:
        payload = json.loads(data)
    except ValueError:
        log.warning("ignoring a malformed model broadcast: %r", data[:200])
        return
    if payload.get("origin") == origin():
        return
    apply(payload)
    log.info("heard %s (kind %s, tenant %s) in pid %s", payload.get("type"), payload.get("kind"),
             payload.get("tenant"), os.getpid())

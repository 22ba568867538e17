"""Channel-layer groups and the frames pushed to them; the one place group names are built.

It listens to the domain events (chatbot.events) and forwards them to the sockets."""
import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chatbot import events
from chatbot.errors import TRANSIENT_ERRORS

WIDGET_MESSAGE_FIELDS = ("id", "seq", "sender", "text", "created_at", "author", "choices")

log = logging.getLogger(__name__)
# A publish also meets the socket's own errors (OSError) when Redis goes away mid-write.
_PUBLISH_TRANSIENT = (*TRANSIENT_ERRORS, OSError)

# The ASGI server's event loop, recorded at connect; the in-memory layer only works from it.
_server_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def visitors_group(tenant_id: int) -> str:
    """Every widget socket of a tenant: told when its team comes online or goes away."""
    return f"visitors.{tenant_id}"


PRESENCE_EVENT = {"type": "chat.presence"}


def tenant_group(tenant_id: int) -> str:
    """Agents' consoles of a tenant listen here."""
    return f"tenant.{tenant_id}"


def remember_server_loop() -> None:
    """Called from async code in the web process so worker threads can publish in-process."""
    global _server_loop
    with _loop_lock:
        _server_loop = asyncio.get_running_loop()


PUBLISH_TIMEOUT = 10.0  # seconds `flush` and `_group_send` wait for their events to reach the layer


class _Publisher:
    """An event loop in a daemon thread of this process that sends group messages one at a time, in the
    order they were submitted, over connections it keeps.

    Sync code (the worker, the web process's database thread) used to publish with async_to_sync, which
    in a worker starts an event loop and a Redis connection per call (1.2 to 1.8 ms each, five or so per
    answer), and in the web process waited on the busy server loop while holding the database thread.
    One queue keeps every publish in submission order; `flush` waits for everything submitted (after
    each Celery task, at exit).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue | None = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="realtime-publisher", daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._queue = asyncio.Queue()
        self.loop.create_task(self._drain())
        ready.set()
        self.loop.run_forever()

    async def _drain(self) -> None:
        while True:
            layer, group, event, done = await self._queue.get()
            if not done.set_running_or_notify_cancel():
                continue
            if layer is None:  # a flush marker: everything before it is sent
                done.set_result(None)
                continue
            try:
                await layer.group_send(group, event)
            except Exception as exc:  # noqa: BLE001 - reported by the future's callback
                done.set_exception(exc)
            else:
                done.set_result(None)

    def submit(self, layer, group: str, event: dict) -> concurrent.futures.Future:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._queue.put_nowait, (layer, group, event, done))
        return done


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _the_publisher() -> _Publisher:
    """This process's publisher, started at its first publish (a forked child starts its own)."""
    global _publisher
    publisher = _publisher
    if publisher is None or publisher.pid != os.getpid() or not publisher.thread.is_alive():
        with _publisher_lock:
            publisher = _publisher
            if publisher is None or publisher.pid != os.getpid() or not publisher.thread.is_alive():
                publisher = _publisher = _Publisher()
    return publisher


def flush(timeout: float = PUBLISH_TIMEOUT) -> bool:
    """Wait until every event this process submitted so far was sent (or failed); False on timeout."""
    publisher = _publisher
    if publisher is None or publisher.pid != os.getpid() or not publisher.thread.is_alive():
        return True
    try:
        publisher.submit(None, "", {}).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        log.warning("events not yet published after %s s", timeout)
        return False
    return True


def _send(group: str, event: dict) -> None:
    """Best effort: the message is stored already, and clients catch up with `resume`."""
    _send_all([(group, event)])


def _send_all(items: list[tuple[str, dict]]) -> None:
    """Publish `items`, in order after everything published before, and wait until they are sent: the
    caller's next step (an ack, the next event) comes after them. Failures are logged, never raised
    (the caller's write is committed, and clients catch up).

    Waiting costs about 0.5 ms a publish on loopback; not waiting made publishes queue behind the
    caller's own Python (the GIL changes hands every 5 ms), later than waiting for them."""
    try:
        pending = _group_send_many(items)
    except Exception:  # noqa: BLE001 - a broken layer must not undo a stored message
        log.exception("could not publish to %s", ", ".join(group for group, _ in items))
        return
    for (group, event), done in zip(items, pending):
        try:
            done.result(timeout=PUBLISH_TIMEOUT)
        except Exception:  # noqa: BLE001 - reported below
            pass
        _report(group, event.get("type"), done)


def _report(group: str, kind: str | None, done: concurrent.futures.Future) -> None:
    if not done.done():
        log.warning("could not publish %s to %s within %s s", kind, group, PUBLISH_TIMEOUT)
        return
    exc = None if done.cancelled() else done.exception()
    if exc is None:
        return
    if isinstance(exc, _PUBLISH_TRANSIENT):  # Redis away: one line per publish, no traceback
        log.warning("could not publish %s to %s: %r", kind, group, exc)
    else:
        log.error("could not publish %s to %s", kind, group, exc_info=exc)


def _group_send(group: str, event: dict) -> None:
    """Publish one event and wait for it (raises what the layer raised)."""
    for done in _group_send_many([(group, event)]):
        done.result(timeout=PUBLISH_TIMEOUT)


def _group_send_many(items: list[tuple[str, dict]]) -> list[concurrent.futures.Future]:
    layer = get_channel_layer()
    if layer is None:
        return []
    if type(layer).__name__ == "InMemoryChannelLayer":
        return [_in_memory_send(layer, group, event) for group, event in items]
    publisher = _the_publisher()
    return [publisher.submit(layer, group, event) for group, event in items]


def _in_memory_send(layer, group: str, event: dict) -> concurrent.futures.Future:
    """The in-memory layer (one process, no Redis) only works from the server's loop: sent there, and
    waited for (one at a time keeps them in order)."""
    loop = _server_loop
    done: concurrent.futures.Future = concurrent.futures.Future()
    try:
        if loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop).result(PUBLISH_TIMEOUT)
                done.set_result(None)
                return done
        async_to_sync(layer.group_send)(group, event)
    except Exception as exc:  # noqa: BLE001 - reported like the publisher's
        done.set_exception(exc)
    else:
        done.set_result(None)
    return done


# --- the fan-out: domain events to the widget's and the agents' groups --------------------


def on_message_created(event: dict) -> None:
    """Agents get every message (notes included) and the conversation's new summary; the widget
    gets what others wrote (the visitor's own messages reached her as acks), never notes."""
    amsg = event["message"]
    if amsg["sender"] != "visitor" and not amsg.get("private"):
        widget_msg = {k: v for k, v in amsg.items() if k in WIDGET_MESSAGE_FIELDS}
        if amsg["sender"] != "agent":
            widget_msg.pop("author", None)
        sends = [(conversation_group(event["conversation"]), {"type": "chat.message", "message": widget_msg})]
    else:
        sends = []
    group = tenant_group(event["tenant"])
    sends.append((group, {"type": "agent.message", "conversation": event["conversation"], "message": amsg}))
    sends.append((group, {"type": "agent.conversation", "conversation": event["summary"]}))
    _send_all(sends)


def on_conversation_changed(event: dict) -> None:
    conv = event["conversation"]
    sends = [(tenant_group(event["tenant"]), {"type": "agent.conversation", "conversation": conv})]
    previous = event.get("previous") or {}
    assignee = (conv["assignee"] or {}).get("id")
    if previous and (previous.get("status") != conv["status"] or previous.get("assignee") != assignee):
        sends.append((conversation_group(conv["id"]), {"type": "chat.status", "status": conv["status"],
                                                       "agent": (conv["assignee"] or {}).get("name")}))
    _send_all(sends)


def on_typing(event: dict) -> None:
    sends = []
    if event["sender"] != "visitor":
        sends.append((conversation_group(event["conversation"]),
                      {"type": "chat.typing", "sender": event["sender"], "on": event["on"]}))
    sends.append((tenant_group(event["tenant"]), {"type": "agent.typing", "conversation": event["conversation"],
                                                  "sender": event["sender"], "on": event["on"]}))
    _send_all(sends)


def on_suggestions_ready(event: dict) -> None:
    _send(tenant_group(event["tenant"]), {"type": "agent.suggestions", "conversation": event["conversation"],
                                          "message_id": event["message"], "suggestions": event["suggestions"]})


def on_feedback_recorded(event: dict) -> None:
    _send(tenant_group(event["tenant"]), {"type": "agent.feedback", "conversation": event["conversation"],
                                          "message_id": event["message"], "feedback": event["feedback"]})


def on_email_state_changed(event: dict) -> None:
    """A mailed message was sent or failed: the agents' consoles update its mark."""
    _send(tenant_group(event["tenant"]), {"type": "agent.email", "conversation": event["conversation"],
                                          "message_id": event["message"], "email_state": event["email_state"]})


def _flush_after_task(**_) -> None:
    flush()


def subscribe_all() -> None:
    """Called once from chatbot.apps: the realtime side of every domain event. Events a process
    published are flushed after each Celery task (before its late ack) and at exit."""
    atexit.register(flush)
    try:
        from celery.signals import task_postrun
    except ImportError:  # pragma: no cover - celery is a dependency
        pass
    else:
        task_postrun.connect(_flush_after_task, weak=False, dispatch_uid="chatbot.sockets.realtime.flush")
    events.subscribe(events.MESSAGE_CREATED, on_message_created)
    events.subscribe(events.CONVERSATION_CHANGED, on_conversation_changed)
    events.subscribe(events.TYPING, on_typing)
    events.subscribe(events.SUGGESTIONS_READY, on_suggestions_ready)
    events.subscribe(events.FEEDBACK_RECORDED, on_feedback_recorded)
    events.subscribe(events.EMAIL_STATE_CHANGED, on_email_state_changed)

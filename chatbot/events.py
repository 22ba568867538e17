"""Domain events: services emit them, subscribers fan them out (Zulip's send_event_on_commit).

`emit` delivers an event to its subscribers once the surrounding transaction commits, so
nobody hears of a write that was rolled back. The realtime fan-out (widget and agent groups)
subscribes in chatbot.apps; the answer trigger subscribes in inference.apps, so the core
app never imports the worker side.
"""
import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

MESSAGE_CREATED = "message_created"
CONVERSATION_CHANGED = "conversation_changed"
TYPING = "typing"
FEEDBACK_RECORDED = "feedback_recorded"
MODEL_PROMOTED = "model_promoted"
SUGGESTIONS_READY = "suggestions_ready"
EVENT_TYPES = (MESSAGE_CREATED, CONVERSATION_CHANGED, TYPING, FEEDBACK_RECORDED, MODEL_PROMOTED, SUGGESTIONS_READY)

# Sent once by the ASGI entry point; lets the worker side warm its models before the first visitor.
web_process_started = Signal()

Subscriber = Callable[[dict], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(event_type: str, subscriber: Subscriber) -> None:
    """Register `subscriber` for `event_type`; registering the same one twice is a no-op."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if subscriber not in _subscribers[event_type]:
        _subscribers[event_type].append(subscriber)


def emit(event: dict) -> None:
    """Deliver `event` after the current transaction commits (at once outside one)."""
    if event.get("type") not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event.get('type')!r}")
    transaction.on_commit(lambda: deliver(event))


def deliver(event: dict) -> None:
    """Hand `event` to every subscriber now; one failing subscriber does not stop the others."""
    for subscriber in list(_subscribers[event["type"]]):
        try:
            subscriber(event)
        except Exception:  # noqa: BLE001 - the write is committed; a broken listener must not undo it
            log.exception("subscriber %s failed on %s", getattr(subscriber, "__name__", subscriber), event["type"])

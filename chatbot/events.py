"""Domain events: services emit them, subscribers fan them out (Zulip's send_event_on_commit).

`emit` delivers an event to its subscribers once the surrounding transaction commits, so
nobody hears of a write that was rolled back. The realtime fan-out (widget and agent groups)
subscribes in chatbot.apps; the worker side subscribes in inference.apps (answers, suggestions,
retrains, grouping, warm-up). Events are the one road from the core to the workers: the core
never imports the worker side, sends a task or calls one of its commands.
"""
import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger(__name__)

MESSAGE_CREATED = "message_created"
CONVERSATION_CHANGED = "conversation_changed"
TYPING = "typing"
FEEDBACK_RECORDED = "feedback_recorded"
MODEL_PROMOTED = "model_promoted"
SUGGESTIONS_READY = "suggestions_ready"
# Work the core asks of the worker side, which subscribes to these in inference.apps.
ANSWER_REQUESTED = "answer_requested"  # a stored visitor message queued again (sweep, re-send)
RETRAIN_REQUESTED = "retrain_requested"  # a TrainingRun was queued
CLUSTERS_REQUESTED = "clusters_requested"  # a manager asked for the unanswered questions to be grouped
WEB_PROCESS_STARTED = "web_process_started"  # the ASGI entry point loaded: warm the models up
EMAIL_REQUESTED = "email_requested"  # a message's queued mail, queued again by the mail sweep (chatbot.mail)
EMAIL_STATE_CHANGED = "email_state_changed"  # a message's mail was sent or failed: agents see its mark change
EVENT_TYPES = (MESSAGE_CREATED, CONVERSATION_CHANGED, TYPING, FEEDBACK_RECORDED, MODEL_PROMOTED, SUGGESTIONS_READY,
               ANSWER_REQUESTED, RETRAIN_REQUESTED, CLUSTERS_REQUESTED, WEB_PROCESS_STARTED, EMAIL_REQUESTED,
               EMAIL_STATE_CHANGED)

Subscriber = Callable[[dict], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(event_type: str, subscriber: Subscriber) -> None:
    """Register `subscriber` for `event_type`; registering the same one twice is a no-op."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if subscriber not in _subscribers[event_type]:
        _subscribers[event_type].append(subscriber)


def unsubscribe(event_type: str, subscriber: Subscriber) -> None:
    """Stop delivering `event_type` to `subscriber` (tests); unknown subscribers are ignored."""
    if subscriber in _subscribers[event_type]:
        _subscribers[event_type].remove(subscriber)


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

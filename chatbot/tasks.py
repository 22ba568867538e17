"""Periodic housekeeping run by Celery beat."""
import logging

from celery import shared_task

from chatbot.conversations import delivery, presence, services
from chatbot.errors import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


@shared_task(name="chatbot.resolve_idle_conversations", acks_late=True, soft_time_limit=300, time_limit=360)
def resolve_idle_conversations_task() -> int:
    return services.conversations_resolve_idle()


@shared_task(name="chatbot.sweep_unanswered", acks_late=True, soft_time_limit=60, time_limit=90)
def sweep_unanswered_task() -> dict:
    """Queue again the visitor messages whose answer is stuck; give up on those out of attempts."""
    try:
        return delivery.answers_sweep()
    except TRANSIENT_ERRORS as exc:  # the next run, seconds from now, does it
        log.warning("answer sweep skipped: %r", exc)
        return {}


@shared_task(name="chatbot.sweep_presence", acks_late=True, soft_time_limit=60, time_limit=90)
def sweep_presence_task() -> int:
    """Forget console sockets of web processes that died without saying goodbye."""
    return presence.presence_sweep()


@shared_task(name="chatbot.assign_waiting", acks_late=True, soft_time_limit=60, time_limit=90)
def assign_waiting_task() -> int:
    """Give conversations waiting for a person to agents with room: stores that just opened, agents who came
    online or finished a conversation (chatbot.conversations.assignment)."""
    try:
        return services.conversations_assign_waiting()
    except TRANSIENT_ERRORS as exc:  # the next run, a minute from now, does it
        log.warning("assignment sweep skipped: %r", exc)
        return 0

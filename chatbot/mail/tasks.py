"""Celery tasks of e-mail continuity. They take ids and are safe to run twice: a message's mail is sent under
its row lock and state (chatbot.mail.outbound), a hand-off notice once per agent (chatbot.mail.notify).

The worker side queues `chatbot.mail_send` and `chatbot.mail_handoff` (inference.dispatch, which hears the
core's events); beat schedules the sweep and the digests.
"""
import logging

from celery import shared_task
from django.conf import settings

from chatbot.errors import TRANSIENT_ERRORS
from chatbot.mail import notify, outbound

log = logging.getLogger(__name__)

# Acknowledged once it ran (a worker lost mid-send leaves it queued); a bounded SMTP step (EMAIL_TIMEOUT) each.
MAILED = {"acks_late": True, "reject_on_worker_lost": True, "bind": True, "soft_time_limit": 120, "time_limit": 150}


@shared_task(name="chatbot.mail_send", **MAILED)
def message_mail_task(self, message_id: int, retry: bool = True) -> str:
    """A message's mail; retried with back-off while the SMTP server is away, then left to the sweep (queued).
    The sweep's own runs (`retry` false) try once: it comes back itself."""
    try:
        return outbound.mail_send(message_id)
    except (outbound.MailDeferred, *TRANSIENT_ERRORS) as exc:
        if not retry or self.request.retries >= settings.EMAIL_MAX_RETRIES:
            log.warning("mail of message %s deferred (%r): the sweep queues it again", message_id, exc)
            return "deferred"
        raise self.retry(exc=exc, countdown=outbound.backoff(self.request.retries)) from exc


@shared_task(name="chatbot.mail_handoff", **MAILED)
def mail_handoff_task(self, conversation_id: int) -> int:
    """The hand-off notices of a conversation nobody was online for."""
    try:
        return notify.handoff_notify(conversation_id)
    except (outbound.MailDeferred, *TRANSIENT_ERRORS) as exc:
        if self.request.retries >= settings.EMAIL_MAX_RETRIES:
            log.warning("hand-off notices of conversation %s not sent: %r", conversation_id, exc)
            return 0
        raise self.retry(exc=exc, countdown=outbound.backoff(self.request.retries)) from exc


@shared_task(name="chatbot.mail_sweep", acks_late=True, soft_time_limit=60, time_limit=90)
def mail_sweep_task() -> dict:
    """Queue again the mails still queued after EMAIL_SWEEP_AFTER_SECONDS; fail those past EMAIL_GIVE_UP_HOURS."""
    try:
        return outbound.mails_sweep()
    except TRANSIENT_ERRORS as exc:  # the next run does it
        log.warning("mail sweep skipped: %r", exc)
        return {}


@shared_task(name="chatbot.mail_digest", acks_late=True, soft_time_limit=600, time_limit=660)
def mail_digest_task() -> int:
    """Digests for the agents who chose them."""
    try:
        return notify.digests_send()
    except TRANSIENT_ERRORS as exc:
        log.warning("digests skipped: %r", exc)
        return 0

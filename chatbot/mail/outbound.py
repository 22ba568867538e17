"""Agents' replies and requested transcripts, mailed to the visitor: what is mailed, and sending it once.

The unit of work is a message row, and its mail's state lives on it (Message.email_state):

    ""      not mailed: the visitor had the chat open, left no address, or it is a note
    queued --a sender holds the row lock and the SMTP server accepts--> sent
      ^  |
      |  +-- SMTP away, a 4xx answer: still queued; the task retries with back-off (EMAIL_MAX_RETRIES)
      |  +-- a 5xx answer for the address or the content, or EMAIL_GIVE_UP_HOURS passed --> failed
      +-- beat's sweep (chatbot.mail_sweep): queued for EMAIL_SWEEP_AFTER_SECONDS, queued again

An agent's reply is marked `queued` in the transaction that stores it (`reply_fields`), and the resolve notice
of a conversation whose visitor asked for the transcript likewise (`transcript_fields`), so the promise to mail
is committed with the message or not at all: a web process that dies after the commit loses nothing, the
sweep finds the row. The worker side hears of the new message (`message_created`, email_state queued) and
runs `mail_send`.

Once, not twice: a sender takes the row with SELECT ... FOR NO KEY UPDATE SKIP LOCKED, sends while it holds
the lock, and marks it sent in the same transaction. A second sender (a duplicate task, the sweep) skips a row
that is being sent and finds a sent one sent. The one window left is between the SMTP server's acceptance and
the commit (a process killed there, the database lost there): the row is still queued and the mail goes out
again. We chose that over the opposite order (mark sent, then send), whose window loses the mail instead; the
second copy carries the same Message-ID, which mail clients and Gmail show once.
"""
import logging
import random
import smtplib
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chatbot import events
from chatbot.errors import TRANSIENT_ERRORS
from chatbot.mail import compose, presence
from chatbot.models import Conversation, Message

log = logging.getLogger(__name__)

State = Message.EmailState


class MailDeferred(Exception):
    """A mail that could not go now (the SMTP server away or answering 4xx): it stays queued, to be tried again."""


# --- what is mailed (called inside the transactions that store the messages) ---------------------------


def reply_fields(conversation: Conversation, *, private: bool = False) -> dict:
    """The mail fields of an agent's new message in `conversation` (locked): queued when it is a reply (not a
    note) to a visitor who left an address and has no widget socket open."""
    if private or not conversation.visitor.email or presence.visitor_connected(conversation.id):
        return {}
    return {"email_state": State.QUEUED}


def transcript_fields(conversation: Conversation) -> dict:
    """The mail fields of the notice that resolves `conversation` (locked): queued when its visitor asked for the
    transcript and left an address."""
    if not conversation.transcript_requested or not conversation.visitor.email:
        return {}
    return {"email_state": State.QUEUED}


# --- sending -----------------------------------------------------------------------------------------


def mail_send(message_id: int) -> str:
    """One attempt at a message's mail; returns its state after it ("sent", "failed", "" when it is not mailed),
    "busy" when another sender holds it, "gone" when the message was erased. Raises MailDeferred when the
    SMTP server could not take it now (the attempt is counted; the row stays queued)."""
    try:
        with transaction.atomic():
            locked = list(Message.objects.filter(pk=message_id)
                          .select_for_update(no_key=True, skip_locked=True).values_list("pk", flat=True))
            if not locked:
                return "busy" if Message.objects.filter(pk=message_id).exists() else "gone"
            message = (Message.objects.select_related("conversation__tenant", "conversation__visitor", "author")
                       .get(pk=message_id))
            if message.email_state != State.QUEUED:
                return message.email_state
            if not message.conversation.visitor.email:  # erased since (a data-subject request)
                return _finish(message, State.FAILED, "no address")
            if message.created_at < timezone.now() - timedelta(hours=settings.EMAIL_GIVE_UP_HOURS):
                return _finish(message, State.FAILED, "too old")
            mail = (compose.transcript_mail(message) if message.sender == Message.Sender.SYSTEM
                    else compose.reply_mail(message))
            try:
                deliver([mail])
            except smtplib.SMTPException as exc:  # refused for good: this address or this content
                return _finish(message, State.FAILED, _why(exc))
            return _finish(message, State.SENT, mail_id=mail.extra_headers["Message-ID"])
    except MailDeferred:
        Message.objects.filter(pk=message_id, email_state=State.QUEUED).update(
            email_attempts=F("email_attempts") + 1)
        raise


def mail_send_here(message_id: int, retry: bool = True) -> str:
    """`mail_send` with the Celery task's retries, on a thread of this process (one-process mode)."""
    attempts = settings.EMAIL_MAX_RETRIES + 1 if retry else 1
    for attempt in range(attempts):
        try:
            return mail_send(message_id)
        except (MailDeferred, *TRANSIENT_ERRORS) as exc:
            if attempt + 1 >= attempts:
                log.warning("mail of message %s deferred: %r", message_id, exc)
                return "deferred"
            time.sleep(backoff(attempt))
    return "deferred"


def backoff(retries: int) -> float:
    """Seconds before retry number `retries` + 1: 1, 2, 4... up to EMAIL_RETRY_BACKOFF_MAX, less a random part
    so that mails deferred together do not all come back at once."""
    return min(settings.EMAIL_RETRY_BACKOFF_MAX, 2 ** retries) * random.uniform(0.5, 1.0)


def deliver(mails: list) -> None:
    """Hand `mails` to the e-mail backend; MailDeferred when the server is away or answers 4xx, SMTPException
    (from smtplib) when it refuses them for good."""
    try:
        get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT).send_messages(mails)
    except smtplib.SMTPException as exc:
        if _permanent(exc):
            raise
        raise MailDeferred(_why(exc)) from exc
    except OSError as exc:  # refused, reset, timed out, no route: the server is away
        raise MailDeferred(repr(exc)) from exc


def _permanent(exc: smtplib.SMTPException) -> bool:
    """A 5xx about the recipient or the content. Authentication and the sender address are this server's set-up,
    not the mail's: deferred until an operator fixes them (or EMAIL_GIVE_UP_HOURS)."""
    if isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused, smtplib.SMTPNotSupportedError,
                        smtplib.SMTPConnectError, smtplib.SMTPHeloError)):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", 0)
    return isinstance(code, int) and code >= 500


def _why(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
                         for code, text in exc.recipients.values())[:200]
    return repr(exc)[:200]


def _finish(message: Message, state: str, why: str = "", mail_id: str = "") -> str:
    """Record the attempt's outcome on the (locked) row (a sent mail's Message-ID with it) and tell the agents."""
    fields = {"email_message_id": mail_id} if mail_id else {}
    Message.objects.filter(pk=message.pk).update(email_state=state, email_attempts=F("email_attempts") + 1, **fields)
    if state == State.FAILED:
        log.warning("mail of message %s failed: %s", message.pk, why)
    state_changed(message, state)
    return state


def state_changed(message: Message, state: str) -> None:
    events.emit({"type": events.EMAIL_STATE_CHANGED, "tenant": message.conversation.tenant_id,
                 "conversation": message.conversation_id, "message": message.pk, "email_state": state})


# --- the sweep ------------------------------------------------------------------------------------------


def mails_sweep() -> dict:
    """Beat's sweep: mails queued for EMAIL_SWEEP_AFTER_SECONDS are queued again (their task's retries ran out,
    or the task was lost), EMAIL_SWEEP_BATCH at a time, oldest first; those older than EMAIL_GIVE_UP_HOURS fail."""
    now = timezone.now()
    give_up = now - timedelta(hours=settings.EMAIL_GIVE_UP_HOURS)
    queued = Message.objects.filter(email_state=State.QUEUED)
    failed = 0
    for message in queued.filter(created_at__lt=give_up).select_related("conversation")[:settings.EMAIL_SWEEP_BATCH]:
        with transaction.atomic():
            if Message.objects.filter(pk=message.pk, email_state=State.QUEUED).update(email_state=State.FAILED):
                log.warning("mail of message %s failed: not sent in %s hours", message.pk,
                            settings.EMAIL_GIVE_UP_HOURS)
                state_changed(message, State.FAILED)
                failed += 1
    stale = now - timedelta(seconds=settings.EMAIL_SWEEP_AFTER_SECONDS)
    rows = list(queued.filter(created_at__lt=stale, created_at__gte=give_up).order_by("created_at")
                .values_list("pk", "conversation_id", "conversation__tenant_id")[:settings.EMAIL_SWEEP_BATCH])
    for pk, conversation_id, tenant_id in rows:
        events.emit({"type": events.EMAIL_REQUESTED, "tenant": tenant_id, "conversation": conversation_id,
                     "message": pk})
    if rows or failed:
        log.info("mail sweep: %d queued again, %d failed", len(rows), failed)
    return {"queued": len(rows), "failed": failed}

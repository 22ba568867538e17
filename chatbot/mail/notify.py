"""Agents hear of hand-offs nobody was online for, by e-mail, as each of them chose (AgentMembership.notify):
`each`, a mail per hand-off; `digest`, one mail every EMAIL_DIGEST_SECONDS listing the hand-offs since her last
digest that still wait; `none`.

The worker side hears of the hand-off (`conversation_changed` to waiting) and runs `handoff_notify`, which looks
again: a conversation someone took meanwhile, or a store whose agent came online, mails nobody. A notice has no
row of its own, so each (hand-off, agent) is claimed in a shared key before it is sent (and released when the
server could not take it, for the retry): a task run twice mails each agent once. A digest is sent under its
membership's row lock and moves digest_sent_at in the same transaction, like a visitor's mail
(chatbot.mail.outbound).
"""
import logging
import smtplib
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from chatbot.conversations import presence
from chatbot.errors import TRANSIENT_ERRORS
from chatbot import redis_clients
from chatbot.mail import compose, kv
from chatbot.mail.outbound import MailDeferred, deliver, backoff
from chatbot.models import AgentMembership, Conversation, ConversationTransition

log = logging.getLogger(__name__)

Notify = AgentMembership.Notify
CLAIM_SECONDS = 7 * 24 * 3600
DIGEST_MAX = 100  # conversations listed in one digest


def _recipients(tenant_id: int, notify: str):
    return (AgentMembership.objects.filter(tenant_id=tenant_id, notify=notify, user__is_active=True)
            .exclude(user__email="").select_related("user", "tenant"))


def handoff_notify(conversation_id: int) -> int:
    """Mail the store's `each` agents about the conversation's latest hand-off, if it still waits and none of
    them is online; returns the mails sent. Raises MailDeferred when the SMTP server could not take one (those
    sent stay claimed: the retry mails the others)."""
    conversation = (Conversation.objects.select_related("tenant", "visitor").filter(pk=conversation_id).first())
    if conversation is None or conversation.status != Conversation.Status.WAITING:
        return 0
    if presence.agents_online(conversation.tenant_id):
        return 0
    handoff = (ConversationTransition.objects.filter(conversation_id=conversation_id,
                                                     to_status=Conversation.Status.WAITING)
               .order_by("-id").values_list("id", flat=True).first())
    sent = 0
    for membership in _recipients(conversation.tenant_id, Notify.EACH):
        claim = kv.key("handoff", handoff, membership.user_id)
        if not _claim(claim):
            continue
        try:
            deliver([compose.handoff_mail(conversation, membership)])
        except MailDeferred:
            _release(claim)
            raise
        except smtplib.SMTPException as exc:  # this agent's address refused: the others still hear of it
            log.warning("hand-off notice to user %s refused: %r", membership.user_id, exc)
            continue
        sent += 1
    return sent


def handoff_notify_here(conversation_id: int) -> int:
    """`handoff_notify` with the Celery task's retries, on a thread of this process (one-process mode)."""
    for attempt in range(settings.EMAIL_MAX_RETRIES + 1):
        try:
            return handoff_notify(conversation_id)
        except (MailDeferred, *TRANSIENT_ERRORS) as exc:
            if attempt >= settings.EMAIL_MAX_RETRIES:
                log.warning("hand-off notices of conversation %s not sent: %r", conversation_id, exc)
                return 0
            time.sleep(backoff(attempt))
    return 0


def digests_send() -> int:
    """Beat: every `digest` agent with hand-offs waiting since her last digest gets one; returns how many went.
    One that cannot go now stays due: her next run lists the same hand-offs (digest_sent_at did not move)."""
    sent = 0
    ids = (AgentMembership.objects.filter(notify=Notify.DIGEST, user__is_active=True).exclude(user__email="")
           .values_list("id", flat=True))
    for membership_id in ids:
        try:
            sent += digest_send(membership_id)
        except (MailDeferred, *TRANSIENT_ERRORS) as exc:
            log.warning("digest of membership %s deferred: %r", membership_id, exc)
    return sent


def digest_send(membership_id: int) -> bool:
    """One agent's digest, if she has hand-offs to hear of; True when it was sent."""
    now = timezone.now()
    with transaction.atomic():
        locked = list(AgentMembership.objects.filter(pk=membership_id)
                      .select_for_update(skip_locked=True).values_list("pk", flat=True))
        if not locked:
            return False
        membership = AgentMembership.objects.select_related("user", "tenant").get(pk=membership_id)
        if membership.notify != Notify.DIGEST or not membership.user.email:
            return False
        since = membership.digest_sent_at or now - timedelta(seconds=settings.EMAIL_DIGEST_SECONDS)
        handed_off = ConversationTransition.objects.filter(to_status=Conversation.Status.WAITING,
                                                           created_at__gt=since).values("conversation_id")
        conversations = list(Conversation.objects.filter(tenant_id=membership.tenant_id,
                                                         status=Conversation.Status.WAITING, id__in=handed_off)
                             .select_related("tenant").order_by("waiting_since", "id")[:DIGEST_MAX])
        if not conversations:
            return False
        sent = True
        try:
            deliver([compose.digest_mail(membership, conversations)])
        except smtplib.SMTPException as exc:  # her address refused for good: these are not retried every hour
            log.warning("digest to user %s refused: %r", membership.user_id, exc)
            sent = False
        AgentMembership.objects.filter(pk=membership_id).update(digest_sent_at=now)
        return sent


def _claim(name: str) -> bool:
    if not kv.shared():
        return kv.memory_add(name, 1, CLAIM_SECONDS)
    try:
        return bool(redis_clients.sync_client().set(name, 1, nx=True, ex=CLAIM_SECONDS))
    except (RedisError, OSError) as exc:
        raise MailDeferred(f"claim unavailable: {exc!r}") from exc


def _release(name: str) -> None:
    if not kv.shared():
        kv.memory_delete(name)
        return
    try:
        redis_clients.sync_client().delete(name)
    except (RedisError, OSError) as exc:
        log.warning("could not release %s: %r", name, exc)

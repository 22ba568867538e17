"""The answer to a visitor message, as a state on its row (the unit of work's state lives on its row).

    ""  people held the conversation when she wrote: the bot does not answer it
    queued --a worker starts--> answering --> answered | handed_off
      ^                           |
      |                           +-- transient error: queued again, the task retries with back-off
      |                           +-- permanent error, retries or attempts used up --> failed
      +-- the sweep (stuck: no heartbeat, or queued too long), the visitor's re-send

A worker takes a message with one conditional UPDATE, so two cannot both start it, and refreshes
`answer_updated_at` while it answers (`heartbeat`): a message left `answering` without heartbeats
lost its worker (kill -9, a dead host), and the sweep queues it again within seconds instead of
the broker's visibility timeout. A message that fails for good gets a clear notice and goes to
people ("bot unavailable"), never silence. Duplicate deliveries are harmless: one bot reply per
visitor message is a database constraint, and every run reads the state first.

chatbot never imports the worker side: a re-queue is announced with the `answer_requested`
domain event on commit, and the worker side (inference.dispatch) sends the task.
"""
import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from chatbot import events
from chatbot.conversations import journal, ownership
from chatbot.errors import TRANSIENT_ERRORS
from chatbot.models import Conversation, HandoffReason, Message

log = logging.getLogger(__name__)

State = Message.AnswerState
DONE = (State.ANSWERED, State.HANDED_OFF)
UNAVAILABLE_REASON = "bot unavailable"
UNAVAILABLE_TEXT = "Sorry, our assistant is unavailable right now. A member of our team will reply here."


def answer_fields(conversation: Conversation) -> dict:
    """The delivery fields of a new visitor message of `conversation` (locked): queued for the bot
    while it holds the conversation, none while people do."""
    if conversation.status != Conversation.Status.BOT:
        return {}
    return {"answer_state": State.QUEUED, "answer_updated_at": timezone.now()}


def answer_resend(message: Message, conversation: Conversation) -> bool:
    """The visitor re-sent a stored message (same client_id; `conversation` locked): queue it again
    when the bot holds the conversation and the message failed, or waits for an answer that is
    late (queued or answering, untouched for ANSWER_RESEND_SECONDS: its task or worker was lost)."""
    if conversation.status != Conversation.Status.BOT:
        return False
    late = timezone.now() - timedelta(seconds=settings.ANSWER_RESEND_SECONDS)
    waiting = message.answer_state in (State.QUEUED, State.ANSWERING) and (
        message.answer_updated_at is None or message.answer_updated_at < late)
    if not (waiting or message.answer_state == State.FAILED):
        return False
    Message.objects.filter(pk=message.pk).update(answer_state=State.QUEUED, answer_updated_at=timezone.now())
    _request_answer(conversation.id, message.pk)
    log.info("message %s re-sent while %s: queued again", message.pk, message.answer_state)
    return True


def answer_start(message_id: int, *, take_over: bool = False) -> bool:
    """Mark the message answering for this worker (attempts + 1); False when another run has it or it is done.

    A queued message (or one from before delivery states) is free; an answering one is free once its
    heartbeat stopped, or with `take_over` (the task's own retry, or the broker's redelivery after its
    worker was lost: the attempt that held it is over).
    """
    stale = timezone.now() - timedelta(seconds=settings.ANSWER_STUCK_SECONDS)
    answering = Q(answer_state=State.ANSWERING) & (Q() if take_over else Q(answer_updated_at__lt=stale))
    free = Q(answer_state__in=("", State.QUEUED)) | answering
    return bool(Message.objects.filter(free, pk=message_id, sender=Message.Sender.VISITOR).update(
        answer_state=State.ANSWERING, answer_attempts=F("answer_attempts") + 1, answer_updated_at=timezone.now(),
    ))


def answer_release(message_id: int) -> None:
    """A transient error stopped the answer: queued again, for the task's retry (or the sweep)."""
    Message.objects.filter(pk=message_id, answer_state=State.ANSWERING).update(
        answer_state=State.QUEUED, answer_updated_at=timezone.now())


def answer_done(message_id: int, state: str) -> None:
    """The bot answered (answered) or people have the conversation (handed_off)."""
    if state not in DONE:
        raise ValueError(f"not a final answer state: {state!r}")
    Message.objects.filter(pk=message_id).exclude(answer_state=state).update(
        answer_state=state, answer_updated_at=timezone.now())


def answer_outcome(message: Message) -> str | None:
    """The final state its stored replies show (a bot reply: answered; a notice: handed_off), else None."""
    senders = set(Message.objects.filter(reply_to_id=message.pk).exclude(sender=Message.Sender.VISITOR)
                  .values_list("sender", flat=True))
    if not senders:
        return None
    return State.ANSWERED if Message.Sender.BOT in senders else State.HANDED_OFF


def answer_fail(message_id: int, cause: str = "") -> Message | None:
    """The answer failed for good: the visitor is told and the conversation goes to people.

    Returns the notice, or None when there is nothing to tell (answered meanwhile, failed already,
    or people hold the conversation; the message is marked failed unless answered).
    """
    conversation_id = Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).first()
    if conversation_id is None:
        return None
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        message = Message.objects.select_for_update(no_key=True).get(pk=message_id)
        done = answer_outcome(message)
        if done:
            Message.objects.filter(pk=message_id).update(answer_state=done, answer_updated_at=timezone.now())
            return None
        if message.answer_state == State.FAILED:
            return None
        Message.objects.filter(pk=message_id).update(answer_state=State.FAILED, answer_updated_at=timezone.now())
        log.warning("answering message %s failed for good after %s attempts (%s)", message_id,
                    message.answer_attempts, cause or "unknown cause")
        if conversation.status != Conversation.Status.BOT:
            return None
        ownership.conversation_transition(conversation, Conversation.Status.WAITING, reason=UNAVAILABLE_REASON,
                                          handoff_code=HandoffReason.BOT_UNAVAILABLE)
        return journal.message_append(conversation, Message.Sender.SYSTEM, UNAVAILABLE_TEXT, reply_to_id=message_id,
                                      handoff_code=HandoffReason.BOT_UNAVAILABLE, handoff_reason=UNAVAILABLE_REASON)


# --- the sweep ----------------------------------------------------------------------------------


def _stuck() -> Q:
    now = timezone.now()
    return (
        Q(answer_state=State.ANSWERING, answer_updated_at__lt=now - timedelta(seconds=settings.ANSWER_STUCK_SECONDS))
        | Q(answer_state=State.QUEUED,
            answer_updated_at__lt=now - timedelta(seconds=settings.ANSWER_QUEUED_STUCK_SECONDS))
    )


def stuck_messages(limit: int | None = None) -> list[tuple[int, int]]:
    """(conversation id, message id) of visitor messages waiting too long for an answer, oldest first:
    answering without a heartbeat for ANSWER_STUCK_SECONDS (its worker is gone), or queued for
    ANSWER_QUEUED_STUCK_SECONDS (its task was lost: broker restarted, web process killed before it sent)."""
    rows = Message.objects.filter(_stuck()).order_by("answer_updated_at").values_list("conversation_id", "id")
    return list(rows[: limit or settings.ANSWER_SWEEP_BATCH])


def answers_sweep() -> dict:
    """Queue stuck messages again (at most ANSWER_SWEEP_BATCH a run); give up on those that used
    ANSWER_MAX_ATTEMPTS. Returns counts: requeued, failed, settled (answered or with people meanwhile)."""
    counts = {"requeued": 0, "failed": 0, "settled": 0}
    for conversation_id, message_id in stuck_messages():
        counts[_sweep_one(conversation_id, message_id)] += 1
    if any(counts.values()):
        log.info("answer sweep: %s", counts)
    return counts


def _sweep_one(conversation_id: int, message_id: int) -> str:
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        message = Message.objects.select_for_update(no_key=True).filter(pk=message_id).first()
        if message is None or not Message.objects.filter(_stuck(), pk=message_id).exists():
            return "settled"  # another sweep, a worker or the visitor's re-send moved it meanwhile
        done = answer_outcome(message)
        if done or conversation.status != Conversation.Status.BOT:
            # Answered by a worker that died before recording it, or people took the conversation.
            Message.objects.filter(pk=message_id).update(answer_state=done or State.HANDED_OFF,
                                                         answer_updated_at=timezone.now())
            return "settled"
        if message.answer_attempts >= settings.ANSWER_MAX_ATTEMPTS:
            answer_fail(message_id, f"stuck after {message.answer_attempts} attempts")
            return "failed"
        # A queued message never reached a worker: that lost delivery counts as an attempt too.
        lost = 1 if message.answer_state == State.QUEUED else 0
        Message.objects.filter(pk=message_id).update(
            answer_state=State.QUEUED, answer_attempts=F("answer_attempts") + lost, answer_updated_at=timezone.now())
        _request_answer(conversation_id, message_id)
        return "requeued"


def _request_answer(conversation_id: int, message_id: int) -> None:
    """On commit, the worker side hears it; if queueing fails the message stays queued for the next sweep."""
    events.emit({"type": events.ANSWER_REQUESTED, "conversation": conversation_id, "message": message_id})


# --- the heartbeat of an answer in progress -----------------------------------------------------


def answer_heartbeat(message_ids: list[int]) -> int:
    """Refresh `answer_updated_at` of messages being answered: their worker is alive."""
    return Message.objects.filter(pk__in=message_ids, answer_state=State.ANSWERING).update(
        answer_updated_at=timezone.now())


@contextmanager
def heartbeat(message_id: int):
    """Keep `message_id` fresh while the block runs (a thread beats every ANSWER_HEARTBEAT_SECONDS).

    It stops at ANSWER_TIME_LIMIT even if the block hangs, so a hung answer (pools without time
    limits) goes stale and the sweep gives it to another worker.
    """
    stop = threading.Event()
    interval = settings.ANSWER_HEARTBEAT_SECONDS
    deadline = time.monotonic() + settings.ANSWER_TIME_LIMIT

    def beat() -> None:
        failing = False
        try:
            while not stop.wait(interval) and time.monotonic() < deadline:
                try:
                    answer_heartbeat([message_id])
                    failing = False
                except TRANSIENT_ERRORS as exc:
                    if not failing:  # once per outage, not every beat
                        log.warning("heartbeat of message %s failed: %r", message_id, exc)
                    failing = True
                    close_old_connections()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{message_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()

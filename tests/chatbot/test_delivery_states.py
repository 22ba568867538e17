"""The answer state of visitor messages (chatbot.conversations.delivery): who starts one, the sweep, re-sends, failing
for good, and the answer task's settings; against the real PostgreSQL."""
import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError
from django.utils import timezone

from chatbot import events
from chatbot.conversations import delivery, ownership, services
from chatbot.models import Conversation, Message
from inference import answer as answer_module
from inference.answer import answer_message
from tests.factories import ConversationFactory, KnowledgeEntryFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)
S = Message.AnswerState


@pytest.fixture
def conversation():
    conversation = ConversationFactory()
    KnowledgeEntryFactory(tenant=conversation.tenant, question="How long does shipping take?",
                          answer="Three to five business days.")
    return conversation


@pytest.fixture
def requested():
    """The (conversation, message) pairs chatbot asks the worker side to answer again."""
    calls = []

    def receiver(event):
        calls.append((event["conversation"], event["message"]))

    events.subscribe(events.ANSWER_REQUESTED, receiver)
    yield calls
    events.unsubscribe(events.ANSWER_REQUESTED, receiver)


def receive(conversation, text="how long does shipping take", client_id="c1") -> Message:
    message, _ = services.message_receive(conversation.id, text, client_id)
    return Message.objects.get(pk=message.pk)


def age(message: Message, seconds: float, **fields) -> None:
    then = timezone.now() - timedelta(seconds=seconds)
    Message.objects.filter(pk=message.pk).update(answer_updated_at=then, **fields)


def state(message: Message) -> tuple[str, int]:
    message.refresh_from_db()
    return message.answer_state, message.answer_attempts


def test_a_message_to_the_bot_is_queued_and_one_to_people_has_no_answer_state(conversation):
    assert state(receive(conversation)) == (S.QUEUED, 0)
    ownership.conversation_hand_off(conversation.id, "visitor asked for a person", code="asked_for_person")
    assert state(receive(conversation, "hello?", "c2")) == ("", 0)


def test_of_two_workers_only_one_starts_a_message(conversation):
    message = receive(conversation)
    assert delivery.answer_start(message.id) is True
    assert delivery.answer_start(message.id) is False
    assert state(message) == (S.ANSWERING, 1)


def test_an_answering_message_whose_heartbeat_stopped_can_be_taken_over(conversation, settings):
    message = receive(conversation)
    delivery.answer_start(message.id)
    age(message, settings.ANSWER_STUCK_SECONDS - 2)
    assert delivery.answer_start(message.id) is False  # its worker may still be at it
    assert delivery.answer_start(message.id, take_over=True) is True  # a retry or redelivery of its own task
    age(message, settings.ANSWER_STUCK_SECONDS + 1)
    assert delivery.answer_start(message.id) is True
    assert state(message) == (S.ANSWERING, 3)


def test_the_heartbeat_keeps_an_answer_in_progress_fresh(conversation, settings):
    settings.ANSWER_HEARTBEAT_SECONDS = 0.05
    message = receive(conversation)
    delivery.answer_start(message.id)
    age(message, 60)
    with delivery.heartbeat(message.id):
        time.sleep(0.5)
    message.refresh_from_db()
    assert timezone.now() - message.answer_updated_at < timedelta(seconds=1)


def test_an_answered_message_says_so_and_a_second_run_finds_it_from_the_state(conversation):
    message = receive(conversation)
    assert answer_message(conversation.id, message.id) == "answered"
    assert state(message) == (S.ANSWERED, 1)
    assert answer_message(conversation.id, message.id) == "skipped: already answered"
    assert state(message) == (S.ANSWERED, 1)
    assert Message.objects.filter(reply_to=message).count() == 1


def test_a_message_taken_by_people_before_the_bot_started_is_left_to_them(conversation):
    message = receive(conversation)
    ownership.conversation_take_over(conversation.id, agent=agent_of(conversation.tenant))
    assert answer_message(conversation.id, message.id) == "skipped: conversation is with humans"
    assert state(message) == (S.HANDED_OFF, 0)


@pytest.mark.parametrize("error", [OperationalError("server closed the connection unexpectedly"),
                                   ConnectionError("redis went away")])
def test_a_transient_error_queues_the_message_again_for_the_retry_and_hands_nothing_off(conversation, monkeypatch,
                                                                                        error):
    message = receive(conversation)

    def blip(*args, **kwargs):
        raise error

    monkeypatch.setattr(answer_module, "_answer", blip)
    with pytest.raises(type(error)):
        answer_message(conversation.id, message.id)
    assert state(message) == (S.QUEUED, 1)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT
    assert not Message.objects.filter(sender=Message.Sender.SYSTEM).exists()
    monkeypatch.undo()
    assert answer_message(conversation.id, message.id, take_over=True) == "answered"
    assert state(message) == (S.ANSWERED, 2)


def test_a_soft_time_limit_fails_the_answer_for_good_with_a_clear_notice(conversation, monkeypatch):
    message = receive(conversation)

    def slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(answer_module, "_answer", slow)
    assert answer_message(conversation.id, message.id) == "handed_off: bot failed"
    assert state(message) == (S.FAILED, 1)
    notice = Message.objects.get(reply_to=message)
    assert (notice.sender, notice.text) == ("system", delivery.UNAVAILABLE_TEXT)
    assert (notice.handoff_code, notice.handoff_reason) == ("bot_unavailable", "bot unavailable")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.handoff_code, conversation.handoff_reason) == (
        Conversation.Status.WAITING, "bot_unavailable", "bot unavailable")
    assert answer_message(conversation.id, message.id) == "skipped: already answered"


def test_failing_twice_tells_the_visitor_once(conversation):
    message = receive(conversation)
    assert delivery.answer_fail(message.id, "test") is not None
    assert delivery.answer_fail(message.id, "test") is None
    assert Message.objects.filter(sender=Message.Sender.SYSTEM).count() == 1


def test_an_answered_message_never_fails(conversation):
    message = receive(conversation)
    answer_message(conversation.id, message.id)
    assert delivery.answer_fail(message.id, "late") is None
    assert state(message) == (S.ANSWERED, 1)
    assert not Message.objects.filter(sender=Message.Sender.SYSTEM).exists()


# --- the sweep ----------------------------------------------------------------------------------


def test_the_sweep_requeues_an_answer_whose_worker_died_and_a_task_that_was_lost(conversation, requested, settings):
    dead = receive(conversation, client_id="c1")
    delivery.answer_start(dead.id)
    age(dead, settings.ANSWER_STUCK_SECONDS + 1)
    lost = receive(conversation, "what is your return policy", "c2")
    age(lost, settings.ANSWER_QUEUED_STUCK_SECONDS + 1)
    waiting = receive(conversation, "and payment?", "c3")  # queued a moment ago: its task is on its way
    requested.clear()
    assert delivery.answers_sweep() == {"requeued": 2, "failed": 0, "settled": 0}
    assert sorted(requested) == sorted([(conversation.id, dead.id), (conversation.id, lost.id)])
    assert state(dead) == (S.QUEUED, 1)  # the run that died counted already
    assert state(lost) == (S.QUEUED, 1)  # the delivery that never started counts
    assert state(waiting) == (S.QUEUED, 0)
    assert delivery.answers_sweep() == {"requeued": 0, "failed": 0, "settled": 0}  # fresh again


def test_the_sweep_is_bounded_per_run(conversation, requested, settings):
    settings.ANSWER_SWEEP_BATCH = 2
    for n in range(3):
        age(receive(conversation, f"question {n}", f"c{n}"), settings.ANSWER_QUEUED_STUCK_SECONDS + 1)
    assert delivery.answers_sweep()["requeued"] == 2
    assert Message.objects.filter(answer_updated_at__lt=timezone.now() - timedelta(seconds=30)).count() == 1


def test_the_sweep_gives_up_after_the_last_attempt_tells_the_visitor_and_calls_people(conversation, requested,
                                                                                      settings):
    message = receive(conversation)
    age(message, settings.ANSWER_STUCK_SECONDS + 1, answer_state=S.ANSWERING,
        answer_attempts=settings.ANSWER_MAX_ATTEMPTS)
    requested.clear()
    assert delivery.answers_sweep() == {"requeued": 0, "failed": 1, "settled": 0}
    assert requested == []
    assert state(message) == (S.FAILED, settings.ANSWER_MAX_ATTEMPTS)
    notice = Message.objects.get(sender=Message.Sender.SYSTEM)
    assert notice.text == "Sorry, our assistant is unavailable right now. A member of our team will reply here."
    assert notice.reply_to_id == message.id
    conversation.refresh_from_db()
    assert (conversation.status, conversation.handoff_reason) == (Conversation.Status.WAITING, "bot unavailable")


def test_the_sweep_settles_a_message_answered_by_a_worker_that_died_before_recording_it(conversation, requested,
                                                                                      settings):
    message = receive(conversation)
    delivery.answer_start(message.id)
    services.bot_reply_store(message.id, "Three to five business days.")
    age(message, settings.ANSWER_STUCK_SECONDS + 1)
    requested.clear()
    assert delivery.answers_sweep() == {"requeued": 0, "failed": 0, "settled": 1}
    assert requested == [] and state(message) == (S.ANSWERED, 1)


# --- the visitor's re-send ----------------------------------------------------------------------


def test_a_resend_of_a_late_unanswered_message_queues_it_again_and_stores_nothing(conversation, requested, settings):
    message = receive(conversation)
    requested.clear()
    receive(conversation)  # at once: its task is on its way
    assert requested == []
    age(message, settings.ANSWER_RESEND_SECONDS + 1)
    again = receive(conversation)
    assert again.id == message.id and Message.objects.count() == 1
    assert requested == [(conversation.id, message.id)]
    assert state(message) == (S.QUEUED, 0)


def test_a_resend_of_a_failed_message_queues_it_again_once_the_bot_has_the_conversation(conversation, requested):
    message = receive(conversation)
    delivery.answer_fail(message.id, "test")
    requested.clear()
    receive(conversation)
    assert requested == []  # people have it now
    agent = agent_of(conversation.tenant)
    ownership.conversation_take_over(conversation.id, agent=agent)
    ownership.conversation_hand_back(conversation.id, agent=agent)
    receive(conversation)
    assert requested == [(conversation.id, message.id)]
    assert state(message)[0] == S.QUEUED


def test_a_resend_of_an_answered_message_queues_nothing(conversation, requested, settings):
    message = receive(conversation)
    answer_message(conversation.id, message.id)
    age(message, 60)
    requested.clear()
    receive(conversation)
    assert requested == [] and state(message) == (S.ANSWERED, 1)


# --- the task -----------------------------------------------------------------------------------


def test_the_answer_task_acks_late_is_rejected_when_its_worker_is_lost_and_has_time_limits(settings):
    from chatbot.celery import app

    app.loader.import_default_modules()  # every task a worker registers
    task = app.tasks["inference.answer_message"]
    assert task.acks_late is True and task.reject_on_worker_lost is True
    assert 0 < task.soft_time_limit < task.time_limit
    import kombu.exceptions
    import psycopg
    import redis.exceptions
    for error in (OperationalError, psycopg.OperationalError, redis.exceptions.ConnectionError,
                  redis.exceptions.TimeoutError, kombu.exceptions.OperationalError, ConnectionError):
        assert issubclass(error, task.autoretry_for)
    assert not issubclass(ValueError, task.autoretry_for) and not issubclass(OSError, task.autoretry_for)
    assert task.max_retries >= 3 and task.retry_backoff
    # The broker must never hand a live worker's task to another one: longer than any task holds one.
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > task.time_limit + settings.ANSWER_RETRY_BACKOFF_MAX
    assert all(visibility > (t.time_limit or 0) for t in app.tasks.values())
    assert app.conf.task_acks_late and app.conf.worker_prefetch_multiplier == 1
    sweep = app.conf.beat_schedule["sweep-unanswered"]
    assert sweep["task"] == "chatbot.sweep_unanswered" and sweep["task"] in app.tasks


def test_an_answer_task_out_of_retries_fails_for_good_with_a_notice(conversation):
    from inference.tasks import answer_message_task

    message = receive(conversation)
    delivery.answer_start(message.id)
    answer_message_task.on_failure(OperationalError("still down"), "task-id", (conversation.id, message.id), {}, None)
    assert state(message) == (S.FAILED, 1)
    assert Message.objects.get(reply_to=message).text == delivery.UNAVAILABLE_TEXT

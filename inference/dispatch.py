"""Hand a visitor message to whoever answers or suggests replies: a Celery worker, or (one-process
mode) a thread here."""
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

ANSWER_TASK = "inference.answer_message"
SUGGEST_TASK = "inference.suggest_replies"
RETRAIN_TASK = "inference.retrain"  # routed to settings.TRAINING_QUEUE (CELERY_TASK_ROUTES)
# Who has the conversation when agents, not the bot, reply: they get suggestions.
HUMAN_STATUSES = ("waiting", "human")

# One thread: models load once and answers come in order, as from one worker.
_executor: ThreadPoolExecutor | None = None
# One-process mode trains on a thread of its own: answering never waits behind a retrain.
_trainer: ThreadPoolExecutor | None = None


def _in_process() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answerer")
        _executor.submit(_warm_up_here)
    return _executor


def warm_up_soon() -> None:
    """In one-process mode, load the models in the background (once)."""
    if settings.ANSWER_IN_PROCESS:
        _in_process()


def on_message_created(event: dict) -> None:
    """A visitor message gets answered while the bot holds the conversation, and reply suggestions
    for the agents while people hold it."""
    message = event["message"]
    if message["sender"] != "visitor":
        return
    if event["status"] == "bot":
        answer_later(event["conversation"], message["id"])
    elif event["status"] in HUMAN_STATUSES:
        suggest_later(event["conversation"], message["id"])


def on_answer_requested(sender=None, *, conversation_id: int, message_id: int, **_) -> None:
    """chatbot.delivery queued a stored message again (the sweep, or the visitor's re-send of a late one)."""
    answer_later(conversation_id, message_id)


def on_conversation_changed(event: dict) -> None:
    """A conversation handed off or taken over: suggestions for its newest visitor message (unless it has
    them), so they are there when an agent opens it."""
    conversation = event["conversation"]
    before = (event.get("previous") or {}).get("status")
    if conversation["status"] not in HUMAN_STATUSES or before in (None, conversation["status"]):
        return
    message_id = _newest_visitor_message_without_suggestions(conversation["id"])
    if message_id is not None:
        suggest_later(conversation["id"], message_id)


def on_web_process_started(**_) -> None:
    """One-process mode: load the models as the server starts, not when the first visitor waits."""
    warm_up_soon()


def on_retrain_requested(sender=None, *, run_id: int, **_) -> None:
    """chatbot.learning queued a retrain: a worker on the training queue (or a training thread) runs it."""
    global _trainer
    if settings.ANSWER_IN_PROCESS:
        if _trainer is None:
            _trainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainer")
        _trainer.submit(_retrain_here, run_id)
    else:
        from chatbot.celery import app

        app.send_task(RETRAIN_TASK, args=(run_id,))


def answer_later(conversation_id: int, message_id: int) -> None:
    if settings.ANSWER_IN_PROCESS:
        _in_process().submit(_answer_here, conversation_id, message_id)
    else:
        # By name: the web process never imports the models' code (torch) to enqueue.
        from chatbot.celery import app

        app.send_task(ANSWER_TASK, args=(conversation_id, message_id))


def suggest_later(conversation_id: int, message_id: int) -> None:
    if settings.ANSWER_IN_PROCESS:
        _in_process().submit(_suggest_here, conversation_id, message_id)
    else:
        from chatbot.celery import app

        app.send_task(SUGGEST_TASK, args=(conversation_id, message_id))


def _newest_visitor_message_without_suggestions(conversation_id: int) -> int | None:
    from chatbot.models import Message

    newest = (Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.VISITOR)
              .order_by("-seq").values_list("id", "suggestion").first())
    return newest[0] if newest and newest[1] is None else None


def _answer_here(conversation_id: int, message_id: int) -> None:
    from .answer import answer_message

    try:
        answer_message(conversation_id, message_id)
    except Exception:  # noqa: BLE001 - logged; the visitor can resend or an agent can answer
        log.exception("answering message %s failed", message_id)
    finally:
        connection.close()


def _suggest_here(conversation_id: int, message_id: int) -> None:
    from .assist import suggest_replies

    try:
        suggest_replies(conversation_id, message_id)
    except Exception:  # noqa: BLE001 - logged; agents write their own reply
        log.exception("suggesting replies to message %s failed", message_id)
    finally:
        connection.close()


def _retrain_here(run_id: int) -> None:
    from .retraining import retrain_run

    try:
        retrain_run(run_id)
    except Exception:  # noqa: BLE001 - the run records its failure; the active model keeps serving
        log.exception("retrain run %s failed", run_id)
    finally:
        connection.close()


def _warm_up_here() -> None:
    from .warmup import warm_up

    try:
        warm_up()
    finally:
        connection.close()

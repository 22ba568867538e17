"""Hand a visitor message to whoever answers: a Celery worker, or (one-process mode) a thread here."""
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

ANSWER_TASK = "inference.answer_message"

# One thread: models load once and answers come in order, as from one worker.
_executor: ThreadPoolExecutor | None = None


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
    """The answer trigger: a visitor message in a conversation the bot holds gets answered."""
    message = event["message"]
    if message["sender"] == "visitor" and event["status"] == "bot":
        answer_later(event["conversation"], message["id"])


def on_web_process_started(**_) -> None:
    """One-process mode: load the models as the server starts, not when the first visitor waits."""
    warm_up_soon()


def answer_later(conversation_id: int, message_id: int) -> None:
    if settings.ANSWER_IN_PROCESS:
        _in_process().submit(_answer_here, conversation_id, message_id)
    else:
        # By name: the web process never imports the models' code (torch) to enqueue.
        from chatbot.celery import app

        app.send_task(ANSWER_TASK, args=(conversation_id, message_id))


def _answer_here(conversation_id: int, message_id: int) -> None:
    from .answer import answer_message

    try:
        answer_message(conversation_id, message_id)
    except Exception:  # noqa: BLE001 - logged; the visitor can resend or an agent can answer
        log.exception("answering message %s failed", message_id)
    finally:
        connection.close()


def _warm_up_here() -> None:
    from .warmup import warm_up

    try:
        warm_up()
    finally:
        connection.close()

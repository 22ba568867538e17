"""The worker side's end of the one road from the core: domain events in (subscribed in inference.apps),
work out to a Celery worker or, in one-process mode, to a thread here.

Whether work runs in a worker or in this process is decided in `run_later` and nowhere else.
"""
import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

ANSWER_TASK = "inference.answer_message"
SUGGEST_TASK = "inference.suggest_replies"
RETRAIN_TASK = "inference.retrain"  # routed to settings.TRAINING_QUEUE (CELERY_TASK_ROUTES)
CLUSTERS_TASK = "inference.unanswered_clusters"
# Core-side tasks (chatbot.mail.tasks) this side queues: a message's mail, a hand-off's notices to agents.
MAIL_TASK = "chatbot.mail_send"
HANDOFF_MAIL_TASK = "chatbot.mail_handoff"
# Who has the conversation when agents, not the bot, reply: they get suggestions.
HUMAN_STATUSES = ("waiting", "human")


@dataclass(frozen=True)
class Job:
    """A kind of work: the Celery task that runs it in a worker, the function that runs it here (by path,
    so a web process never imports the models' code), and the thread that runs it here."""

    task: str
    function: str  # "module:function"
    thread: str


ANSWERER, TRAINER, MAILER = "answerer", "trainer", "mailer"
JOBS = {
    "answer": Job(ANSWER_TASK, "inference.answer:answer_message", ANSWERER),
    "suggest": Job(SUGGEST_TASK, "inference.assist:suggest_replies", ANSWERER),
    "retrain": Job(RETRAIN_TASK, "inference.retraining:retrain_run", TRAINER),
    "clusters": Job(CLUSTERS_TASK, "inference.clusters:unanswered_clusters_run", TRAINER),
    "warm_up": Job("", "inference.warmup:warm_up", ANSWERER),  # workers warm up on their own (inference.tasks)
    # Mails wait for an SMTP server on a thread of their own, never in front of an answer.
    "mail": Job(MAIL_TASK, "chatbot.mail.outbound:mail_send_here", MAILER),
    "handoff_mail": Job(HANDOFF_MAIL_TASK, "chatbot.mail.notify:handoff_notify_here", MAILER),
}

# One-process mode: one answering thread (models load once, answers come in order, as from one worker)
# and one for long work (retrains, grouping), so answering never waits behind them.
_threads: dict[str, ThreadPoolExecutor] = {}


def run_later(job: str, *args) -> None:
    """Run `job` with `args` (ids and plain values) in a worker, or in one-process mode on a thread here."""
    spec = JOBS[job]
    if settings.ANSWER_IN_PROCESS:
        _thread(spec.thread).submit(_run_here, job, *args)
    elif spec.task:
        from chatbot.celery import app

        app.send_task(spec.task, args=args)


def _thread(name: str) -> ThreadPoolExecutor:
    if name not in _threads:
        _threads[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    return _threads[name]


def _run_here(job: str, *args) -> None:
    module, function = JOBS[job].function.split(":")
    try:
        getattr(importlib.import_module(module), function)(*args)
    except Exception:  # noqa: BLE001 - logged; the work's own row says it failed, or a person steps in
        log.exception("%s %s failed", job, args)
    finally:
        connection.close()


def answer_later(conversation_id: int, message_id: int) -> None:
    run_later("answer", conversation_id, message_id)


def suggest_later(conversation_id: int, message_id: int) -> None:
    run_later("suggest", conversation_id, message_id)


# --- domain events ------------------------------------------------------------------------------------


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


def on_answer_requested(event: dict) -> None:
    """The core queued a stored message again (the sweep, or the visitor's re-send of a late one)."""
    answer_later(event["conversation"], event["message"])


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


def on_retrain_requested(event: dict) -> None:
    """A retrain was queued: a worker on the training queue (or the training thread) runs it."""
    run_later("retrain", event["run"])


def on_clusters_requested(event: dict) -> None:
    """A manager asked for the unanswered questions to be grouped again."""
    run_later("clusters", event["tenant"], event["from"], event["to"])


def on_message_mailed(event: dict) -> None:
    """An agent's reply (or a resolve notice carrying the transcript) the core marked to be mailed: send it."""
    if event["message"].get("email_state") == "queued":
        run_later("mail", event["message"]["id"])


def on_email_requested(event: dict) -> None:
    """The mail sweep queued a mail again: one attempt (the sweep itself comes back)."""
    run_later("mail", event["message"], False)


def on_handed_off(event: dict) -> None:
    """A conversation went to people: its store's agents may have to hear of it by e-mail (the job looks whether
    it still waits and nobody is online)."""
    conversation = event["conversation"]
    before = (event.get("previous") or {}).get("status")
    if conversation["status"] == "waiting" and before not in (None, "waiting"):
        run_later("handoff_mail", conversation["id"])


def on_web_process_started(event: dict) -> None:
    """One-process mode: load the models as the server starts, not when the first visitor waits."""
    run_later("warm_up")


def _newest_visitor_message_without_suggestions(conversation_id: int) -> int | None:
    from chatbot.models import Message

    newest = (Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.VISITOR)
              .order_by("-seq").values_list("id", "suggestion").first())
    return newest[0] if newest and newest[1] is None else None


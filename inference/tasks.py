"""Celery tasks that run the models. They take ids and are safe to run twice."""
import logging

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings

from chatbot.conversations import delivery
from chatbot.errors import TRANSIENT_ERRORS

from inference.answer import answer_message
from inference.assist import suggest_replies
from inference.clusters import unanswered_clusters_run
from inference.dispatch import ANSWER_TASK, CLUSTERS_TASK, RETRAIN_TASK, SUGGEST_TASK

log = logging.getLogger(__name__)

# Every task here takes ids and is safe to run twice: acknowledged once it ran (a worker lost mid-task leaves
# it queued), retried with back-off while the database or the broker is away.
RETRIED = {"acks_late": True, "autoretry_for": TRANSIENT_ERRORS, "retry_backoff": True}
# A long task whose worker is killed goes back to the queue at once; the next attempt takes it over
# (taken_over), and the task's class records a failure for good.
TAKEN_OVER = {**RETRIED, "bind": True, "reject_on_worker_lost": True}


def taken_over(request) -> bool:
    """A retry, or the broker's redelivery of a task whose worker died: the attempt that held it is over."""
    return bool(request.retries or (request.delivery_info or {}).get("redelivered"))


class AnswerTask(Task):
    """A task whose failure for good (retries used up, hard time limit) reaches the visitor as a notice."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        message_id = args[1] if len(args) > 1 else kwargs.get("message_id")
        log.error("answer task for message %s failed for good: %r", message_id, exc)
        try:
            delivery.answer_fail(message_id, type(exc).__name__)
        except TRANSIENT_ERRORS:  # still away: the sweep fails it once the database is back
            log.warning("could not record the failure of message %s", message_id)


@shared_task(
    **TAKEN_OVER,
    base=AnswerTask,
    name=ANSWER_TASK,
    retry_backoff_max=settings.ANSWER_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.ANSWER_MAX_RETRIES,
    soft_time_limit=settings.ANSWER_SOFT_TIME_LIMIT,
    time_limit=settings.ANSWER_TIME_LIMIT,
)
def answer_message_task(self, conversation_id: int, message_id: int) -> str:
    return answer_message(conversation_id, message_id, take_over=taken_over(self.request))


@shared_task(
    **RETRIED,
    name=SUGGEST_TASK,
    retry_backoff_max=30,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def suggest_replies_task(conversation_id: int, message_id: int) -> list[str]:
    """Reply suggestions for agents; a second run finds them stored."""
    return suggest_replies(conversation_id, message_id)


class RetrainTask(Task):
    """A retrain whose task died for good (the hard time limit, retries used up) is recorded as failed."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from inference.retraining import run_fail

        run_id = args[0] if args else kwargs.get("run_id")
        log.error("retrain task for run %s failed for good: %r", run_id, exc)
        try:
            run_fail(run_id, f"{type(exc).__name__}: {exc}"[:500])
        except TRANSIENT_ERRORS:
            log.warning("could not record the failure of retrain run %s", run_id)


@shared_task(
    **TAKEN_OVER,  # retried when the database, not the training, failed
    base=RetrainTask,
    name=RETRAIN_TASK,  # routed to settings.TRAINING_QUEUE
    retry_backoff_max=settings.RETRAIN_RETRY_BACKOFF_MAX,
    max_retries=5,
    soft_time_limit=settings.RETRAIN_TIME_LIMIT,
    time_limit=settings.RETRAIN_TIME_LIMIT + 120,
)
def retrain_task(self, run_id: int) -> str:
    """One queued retrain (chatbot.learning.services.retrain_request) to its outcome; a second run skips it."""
    from inference.retraining import retrain_run

    run = retrain_run(run_id, take_over=taken_over(self.request))
    return run.status if run else "skipped: no such run"


@shared_task(name="inference.retrain_due", ignore_result=True, soft_time_limit=120, time_limit=180)
def retrain_due_task() -> int:
    """Celery beat: retrain tenants with enough new corrections (RETRAIN_AFTER_CORRECTIONS)."""
    from inference.retraining import retrain_due

    return len(retrain_due())


@shared_task(
    **RETRIED,
    name=CLUSTERS_TASK,
    max_retries=3,
    soft_time_limit=300,
    time_limit=360,
)
def unanswered_clusters_task(tenant_id: int, start: str, end: str) -> int:
    """The managers' "what to fix first" groups of a tenant's unanswered questions, computed again."""
    return unanswered_clusters_run(tenant_id, start, end)


@worker_process_init.connect
def _warm_child(**_) -> None:
    from inference.warmup import warm_up

    warm_up()


@worker_ready.connect
def _warm_solo(sender=None, **_) -> None:
    """Solo and thread pools answer in the main process, which worker_process_init never sees."""
    pool = getattr(sender, "pool", None)  # the sender is the worker's Consumer
    if pool is not None and "prefork" not in type(pool).__module__:
        _warm_child()

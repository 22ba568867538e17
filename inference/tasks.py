"""Celery tasks that run the models. They take ids and are safe to run twice."""
from celery import shared_task
from celery.signals import worker_process_init, worker_ready

from .answer import answer_message
from .assist import suggest_replies
from .dispatch import ANSWER_TASK, SUGGEST_TASK


@shared_task(
    name=ANSWER_TASK,
    acks_late=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
)
def answer_message_task(conversation_id: int, message_id: int) -> str:
    return answer_message(conversation_id, message_id)


@shared_task(
    name=SUGGEST_TASK,
    acks_late=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def suggest_replies_task(conversation_id: int, message_id: int) -> list[str]:
    """Reply suggestions for agents; a second run finds them stored."""
    return suggest_replies(conversation_id, message_id)


@worker_process_init.connect
def _warm_child(**_) -> None:
    from .warmup import warm_up

    warm_up()


@worker_ready.connect
def _warm_solo(sender=None, **_) -> None:
    """Solo and thread pools answer in the main process, which worker_process_init never sees."""
    pool = getattr(sender, "pool", None)  # the sender is the worker's Consumer
    if pool is not None and "prefork" not in type(pool).__module__:
        _warm_child()

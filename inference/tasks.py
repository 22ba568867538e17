"""Celery tasks that run the models. They take ids and are safe to run twice."""
from celery import shared_task

from .answer import answer_message


@shared_task(
    name="inference.answer_message",
    acks_late=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
)
def answer_message_task(conversation_id: int, message_id: int) -> str:
    return answer_message(conversation_id, message_id)

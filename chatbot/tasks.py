"""Periodic housekeeping run by Celery beat."""
from celery import shared_task

from . import services


@shared_task(name="chatbot.resolve_idle_conversations", acks_late=True)
def resolve_idle_conversations_task() -> int:
    return services.conversations_resolve_idle()

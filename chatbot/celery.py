"""Celery application: workers that run the models and answer visitors."""
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

app = Celery("chatbot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["inference", "nlu", "chatbot", "chatbot.mail"])


@task_prerun.connect
@task_postrun.connect
def _database_connections_checked(**_) -> None:
    """Around each task, as around each request: drop a connection that is too old or broken (a database
    restart), keep a healthy one (settings.CELERY_DB_REUSE_MAX keeps Celery from closing every one)."""
    from django.db import close_old_connections

    close_old_connections()

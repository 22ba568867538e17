"""The chatbot platform: Django project and core app."""
from chatbot.celery import app as celery_app

__all__ = ("celery_app",)

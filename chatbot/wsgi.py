"""WSGI entry point (admin and pages only; websockets need the ASGI app)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
application = get_wsgi_application()

"""ASGI entry point: HTTP through Django, websockets through Channels."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up)

from chatbot import events  # noqa: E402
from chatbot.sockets.routing import websocket_urlpatterns  # noqa: E402

# The widget checks origins per tenant in its consumer, so no global origin validator here.
application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": URLRouter(websocket_urlpatterns),
})

# Models load now (in one-process mode), not when the first visitor is already waiting.
# Delivered at once, not on commit: the database need not answer for the server to start.
events.deliver({"type": events.WEB_PROCESS_STARTED})

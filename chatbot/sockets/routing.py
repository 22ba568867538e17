from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from chatbot.sockets.agent import AgentConsumer
from chatbot.sockets.widget import WidgetConsumer

websocket_urlpatterns = [
    # Stores' pages on their own origins: the consumer checks each tenant's allowed origins.
    path("ws/widget/", WidgetConsumer.as_asgi()),
    # The console: the Django session of /accounts/login/, from this server's own pages only.
    path("ws/agent/", AllowedHostsOriginValidator(AuthMiddlewareStack(AgentConsumer.as_asgi()))),
]

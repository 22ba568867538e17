from django.apps import AppConfig


class ChatbotConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chatbot"
    verbose_name = "Chatbot"

    def ready(self) -> None:
        from . import checks, realtime  # noqa: F401  (checks registers the production-settings checks)

        realtime.subscribe_all()

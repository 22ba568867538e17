from django.apps import AppConfig


class ChatbotConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chatbot"
    verbose_name = "Chatbot"

    def ready(self) -> None:
        from chatbot import checks, events
        from chatbot.conversations import services
        from chatbot.learning import evalsets
        from chatbot.sockets import realtime  # noqa: F401  (checks registers settings checks)

        realtime.subscribe_all()
        # Every agent correction joins the corrections evaluation set a candidate model must fix.
        events.subscribe(events.FEEDBACK_RECORDED, evalsets.on_feedback_recorded)
        # An agent who lets a conversation go has room again: her store's waiting hand-offs are given out.
        events.subscribe(events.CONVERSATION_CHANGED, services.on_capacity_freed)

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        from chatbot import delivery, events

        from . import dispatch

        events.subscribe(events.MESSAGE_CREATED, dispatch.on_message_created)
        events.subscribe(events.CONVERSATION_CHANGED, dispatch.on_conversation_changed)
        delivery.answer_requested.connect(dispatch.on_answer_requested, dispatch_uid="inference-answer-requested")
        events.web_process_started.connect(dispatch.on_web_process_started, dispatch_uid="inference-warm-up")

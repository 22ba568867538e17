from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        from chatbot import delivery, events, learning

        from . import dispatch, model_watch

        events.subscribe(events.MESSAGE_CREATED, dispatch.on_message_created)
        # Promotions and corrections: forgotten here at once, broadcast to the other processes.
        events.subscribe(events.MODEL_PROMOTED, model_watch.on_model_promoted)
        events.subscribe(events.FEEDBACK_RECORDED, model_watch.on_feedback_recorded)
        events.subscribe(events.CONVERSATION_CHANGED, dispatch.on_conversation_changed)
        delivery.answer_requested.connect(dispatch.on_answer_requested, dispatch_uid="inference-answer-requested")
        learning.retrain_requested.connect(dispatch.on_retrain_requested, dispatch_uid="inference-retrain")
        events.web_process_started.connect(dispatch.on_web_process_started, dispatch_uid="inference-warm-up")

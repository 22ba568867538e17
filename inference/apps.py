from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        """Subscribe the worker side to the core's domain events: the one road between them."""
        from chatbot import events
        from inference import dispatch, model_watch

        events.subscribe(events.MESSAGE_CREATED, dispatch.on_message_created)
        events.subscribe(events.CONVERSATION_CHANGED, dispatch.on_conversation_changed)
        events.subscribe(events.ANSWER_REQUESTED, dispatch.on_answer_requested)
        events.subscribe(events.RETRAIN_REQUESTED, dispatch.on_retrain_requested)
        events.subscribe(events.CLUSTERS_REQUESTED, dispatch.on_clusters_requested)
        events.subscribe(events.WEB_PROCESS_STARTED, dispatch.on_web_process_started)
        # E-mail continuity: mails of messages, the sweep's re-queued ones, hand-off notices (chatbot.mail).
        events.subscribe(events.MESSAGE_CREATED, dispatch.on_message_mailed)
        events.subscribe(events.EMAIL_REQUESTED, dispatch.on_email_requested)
        events.subscribe(events.CONVERSATION_CHANGED, dispatch.on_handed_off)
        # Promotions and corrections: forgotten here at once, broadcast to the other processes.
        events.subscribe(events.MODEL_PROMOTED, model_watch.on_model_promoted)
        events.subscribe(events.FEEDBACK_RECORDED, model_watch.on_feedback_recorded)

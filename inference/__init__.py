"""The worker side: model serving (device choice, per-process model cache, labelling, retrieval, hand-off
policy, the responder), the answer pipeline, training and evaluation commands, and the Celery tasks.

It hears the core (chatbot) only through domain events, subscribed in inference.apps and answered in
inference.dispatch; the core never imports it."""

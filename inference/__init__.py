"""Model serving: device choice, per-process model cache, retrieval, hand-off policy,
the answer pipeline and the Celery tasks that run it."""

"""Lets the suite run on several pytest-xdist workers against one PostgreSQL and one Redis.

Loaded with `-p tests.parallel` (pytest.ini) before Django reads its settings: on a worker (gw0, gw1, ...)
it gives that worker queues, a channel/rate-limit prefix and a models folder of its own, so the live
processes one worker starts never take another's tasks, broadcasts or model files. pytest-django already
gives each worker a database of its own."""
import os

worker = os.environ.get("PYTEST_XDIST_WORKER")
if worker:
    for name, default in (("CELERY_QUEUE", "answers"), ("TRAINING_QUEUE", "training"), ("CHANNELS_PREFIX", "asgi")):
        os.environ[name] = f"{os.environ.get(name, default)}-{worker}"
    os.environ.pop("RATE_LIMIT_PREFIX", None)  # follows CHANNELS_PREFIX
    if os.environ.get("MODELS_DIR"):
        os.environ["MODELS_DIR"] = os.path.join(os.environ["MODELS_DIR"], worker)
        os.makedirs(os.environ["MODELS_DIR"], exist_ok=True)

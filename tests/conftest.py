"""Shared fixtures: the real PostgreSQL and Redis of the machine, and real server and worker processes."""
import os

import pytest
from django.conf import settings

from tests.factories import TenantFactory
from tests.processes import ROOT, Daphne, Worker, free_port  # noqa: F401 - tests import ROOT and free_port from here

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

uses_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
uses_redis = bool(settings.REDIS_URL)
needs_services = pytest.mark.skipif(
    not (uses_postgres and uses_redis),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: run the suite with `make test`",
)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop; a layer instance carried over holds locks of the last one."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fresh_active_versions():
    """Workers cache which model versions are active (inference.registry); a test's database is its own."""
    from inference import corrections, registry

    registry.versions_forget()
    corrections.memory_forget()
    yield


@pytest.fixture
def tenant(db):
    return TenantFactory(allowed_origins=["https://shop.example"])


@pytest.fixture(scope="session", autouse=True)
def test_database_dropped_cleanly(django_db_setup, django_db_blocker):
    """At the end, end the test database's other sessions (an async test's thread keeps its connection),
    so pytest-django can drop it instead of warning that it is in use."""
    yield
    if not uses_postgres:
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def test_database_url(django_db_setup) -> str:
    """The URL of the test database pytest-django created, for child processes."""
    from django.db import connection

    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def process_env(test_database_url) -> dict:
    """Environment of a server or worker process: the test database, Redis, a queue of this run's own."""
    if not (uses_postgres and uses_redis):
        pytest.skip("needs PostgreSQL and Redis")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url,
        REDIS_URL=settings.REDIS_URL,
        CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        TRAINING_QUEUE=settings.TRAINING_QUEUE,
        CHANNELS_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        MODELS_DIR=str(settings.MODELS_DIR),
        ANSWER_IN_PROCESS="0",
        ALLOWED_HOSTS="*",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def smtp():
    """A real SMTP server on loopback for one test (tests.chatbot.mailserver.SmtpServer)."""
    from tests.chatbot.mailserver import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker(process_env, tmp_path_factory):
    """A real Celery worker process consuming this test run's queue, for one test: it never answers
    the sockets of tests that expect silence, and it stops before the test's database is flushed
    (a worker still answering a message while the flush truncated the tables deadlocked them)."""
    worker = Worker(process_env, tmp_path_factory.mktemp("worker"), name="test")
    try:
        yield worker.start(timeout=90)
    finally:
        worker.stop()
        print(worker.text()[-3000:])


@pytest.fixture(scope="session")
def live_server_url(process_env, tmp_path_factory):
    """The real ASGI server (daphne) on a free port, against the test database and Redis."""
    web = Daphne(process_env, tmp_path_factory.mktemp("web"))
    try:
        yield web.start(timeout=90).url
    finally:
        web.stop()
        print(web.text()[-3000:])

"""Shared fixtures: the real PostgreSQL and Redis of the machine, and real server and worker processes."""
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import TenantFactory

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

uses_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
uses_redis = bool(settings.REDIS_URL)
needs_services = pytest.mark.skipif(
    not (uses_postgres and uses_redis),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: run the suite with `make test`",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if ready():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def celery_worker(process_env, tmp_path_factory):
    """A real Celery worker process consuming this test run's queue, for one test: it never answers
    the sockets of tests that expect silence, and it stops before the test's database is flushed
    (a worker still answering a message while the flush truncated the tables deadlocked them)."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-P", "solo", "-Q",
             process_env["CELERY_QUEUE"], "-l", "info", "--without-gossip", "--without-mingle",
             "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h"],
            cwd=ROOT, env=process_env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(proc, lambda: "ready." in log.read_text(), "celery worker")
        yield proc
    finally:
        _stop(proc)
        print(log.read_text()[-3000:])


@pytest.fixture(scope="session")
def live_server_url(process_env, tmp_path_factory):
    """The real ASGI server (daphne) on a free port, against the test database and Redis."""
    port = free_port()
    log = tmp_path_factory.mktemp("web") / "web.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatbot.asgi:application"],
            cwd=ROOT, env=process_env, stdout=out, stderr=subprocess.STDOUT,
        )

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        _wait_for(proc, listening, "daphne")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        print(log.read_text()[-3000:])

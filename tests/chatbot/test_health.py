"""`/healthz` says ok only when the database and Redis answer, and names the part that does not, fast:
a Redis and a database proxy of the test's own are stopped and cut under a real daphne."""
import json
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.conftest import needs_services
from tests.live_processes import Daphne, TcpProxy, database_url_via, stack, wait_until  # noqa: F401 - stack

pytestmark = [needs_services, pytest.mark.django_db(transaction=True)]


def get_health(url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, json.loads(body), time.monotonic() - started


@pytest.mark.live
def test_health_names_redis_or_the_database_when_it_does_not_answer(stack, tmp_path, test_database_url):
    proxy = TcpProxy(urlsplit(test_database_url).port or 5432)
    try:
        web = stack.start(Daphne({**stack.env, "DATABASE_URL": database_url_via(test_database_url, proxy.port)},
                                 tmp_path))
        status, body, _ = get_health(web.url)
        assert (status, body["status"], body["failing"]) == (200, "ok", [])
        assert body["checks"] == {"database": "ok", "redis": "ok"}

        stack.redis.kill9()
        status, body, took = get_health(web.url)
        assert (status, body["status"], body["failing"]) == (503, "degraded", ["redis"])
        assert body["checks"]["database"] == "ok" and took < 3
        stack.start(stack.redis)
        assert get_health(web.url)[0] == 200

        proxy.cut()
        status, body, took = get_health(web.url)
        assert (status, body["failing"]) == (503, ["database"]) and took < 3
        proxy.restore()
        wait_until(lambda: get_health(web.url)[0] == 200, 10, "health to be ok again")
        assert web.alive()
    finally:
        proxy.close()


def test_a_redis_that_accepts_but_never_answers_is_reported_within_seconds(settings):
    """A hung Redis (the connection opens, nothing answers): a timeout, not a hung health check."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        response = Client().get("/healthz")
        took = time.monotonic() - started
    assert response.status_code == 503 and took < 3
    assert response.json()["failing"] == ["redis"] and response.json()["checks"]["redis"] == "timeout"
    assert response.json()["checks"]["database"] == "ok"

"""The deploy files run what the README promises: prefork workers (time limits), a worker of its own for
the training queue, beat, and daphne refusing socket messages far over SOCKET_MAX_FRAME_SIZE before the
app parses them (checked against a real daphne started with the same option)."""
import asyncio
import json
import re
import shlex

import pytest
import websockets
import yaml
from django.conf import settings

from tests.conftest import ROOT, needs_services
from tests.live_processes import ORIGIN, Daphne, stack  # noqa: F401 - stack is a fixture

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def ws_limit_of(command: str) -> int:
    """The --websocket-max-message-size of a daphne command line, its shell arithmetic worked out."""
    found = re.search(r"--websocket-max-message-size\s+(\S+(?:\s+\S+)*?)\s+chatbot\.asgi", command)
    assert found, command
    value = found.group(1).replace("$$", "$")
    arithmetic = re.fullmatch(r"\$\(\(\s*\$\{SOCKET_MAX_FRAME_SIZE:-(\d+)\}\s*\*\s*(\d+)\s*\+\s*(\d+)\s*\)\)", value)
    if arithmetic:
        default, times, plus = map(int, arithmetic.groups())
        assert default == settings.SOCKET_MAX_FRAME_SIZE
        return default * times + plus
    return int(value.strip('"'))


@pytest.mark.parametrize("command", [
    " ".join(COMPOSE["services"]["web"]["command"].split()),
    next(line for line in (ROOT / "scripts/run.sh").read_text().splitlines() if "-m daphne" in line),
    " ".join(json.loads(re.search(r"^CMD (.*)$", (ROOT / "Dockerfile").read_text(), re.M).group(1))),
])
def test_daphne_refuses_messages_a_little_over_the_frame_limit(command):
    limit = ws_limit_of(command)
    # Room for SOCKET_MAX_FRAME_SIZE characters of any UTF-8 text (up to 4 bytes each), far below 1 MiB.
    assert 4 * settings.SOCKET_MAX_FRAME_SIZE <= limit <= 4 * settings.SOCKET_MAX_FRAME_SIZE + 4096


def test_workers_use_prefork_with_one_child_and_the_training_queue_has_its_own():
    services = COMPOSE["services"]
    worker, trainer = services["worker"]["command"], services["trainer"]["command"]
    for command in (worker, trainer):
        assert command[command.index("-P") + 1] == "prefork" and command[command.index("-c") + 1] == "1"
    assert worker[worker.index("-Q") + 1] == "${CELERY_QUEUE:-answers}"
    assert trainer[trainer.index("-Q") + 1] == "${TRAINING_QUEUE:-training}"
    assert "beat" in services["beat"]["command"]
    env = services["worker"]["environment"]
    assert (env["CELERY_QUEUE"], env["TRAINING_QUEUE"]) == ("${CELERY_QUEUE:-answers}", "${TRAINING_QUEUE:-training}")
    run_worker = next(line for line in (ROOT / "scripts/run.sh").read_text().splitlines() if "-m celery" in line)
    args = shlex.split(run_worker)
    assert args[args.index("-P") + 1] == "prefork" and args[args.index("-c") + 1] == "1"
    assert args[args.index("-Q") + 1] == "${CELERY_QUEUE:-answers},${TRAINING_QUEUE:-training}"
    assert "-B" in args  # one-worker dev mode runs beat inside it: the sweep and retraining checks


@pytest.mark.live
@needs_services
@pytest.mark.django_db(transaction=True)
def test_a_real_daphne_with_that_option_drops_a_half_mib_message_and_the_app_refuses_a_20_k_one(stack, tmp_path):
    """Daphne's own default (1 MiB) would hand the half-MiB frame to the app to read; with the option the
    server drops the socket while reading it (1009, or the connection cut under the still-sending client)."""
    from tests.factories import TenantFactory

    tenant = TenantFactory(allowed_origins=[ORIGIN])
    web = Daphne(stack.env, tmp_path)
    web.args[-1:-1] = ["--websocket-max-message-size", str(ws_limit_of(COMPOSE["services"]["web"]["command"]))]
    stack.start(web)

    async def scenario():
        async with websockets.connect(web.widget_url(tenant.public_key), origin=ORIGIN, max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session"
            await ws.send(json.dumps({"type": "message", "text": "x" * 20_000, "client_id": "c"}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"type": "message", "text": "x" * (1 << 19), "client_id": "d"}))
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.exceptions.ConnectionClosed as closed:
                return refused, closed.rcvd.code if closed.rcvd else ws.close_code
            return refused, "answered"

    refused, close_code = asyncio.run(scenario())
    assert refused["code"] == "frame_too_large"
    assert close_code in (1009, 1006), close_code  # too big: refused by the server, never parsed
    assert web.alive() and "Traceback" not in web.text()

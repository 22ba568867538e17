"""Answer delivery with real processes: a database blip while a worker answers is retried, not handed
to people; a visitor's re-send of a stored message whose task was lost gets it answered."""
import asyncio
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from chatbot.models import Conversation, Message
from tests.conftest import needs_services
from tests.live_processes import (  # noqa: F401 - shop and stack are fixtures
    SHIPPING, Beat, Daphne, TcpProxy, WidgetClient, Worker, database_url_via, in_db, reply_in_db, shop, stack,
    wait_until,
)

pytestmark = [pytest.mark.live, needs_services, pytest.mark.django_db(transaction=True)]


def test_a_database_blip_while_answering_is_retried_and_answered_not_handed_off(shop, stack, tmp_path,
                                                                               test_database_url):
    proxy = TcpProxy(urlsplit(test_database_url).port or 5432)
    worker_env = {**stack.env, "DATABASE_URL": database_url_via(test_database_url, proxy.port),
                  "ANSWER_DEBUG_DELAY": "3"}
    worker = stack.start(Worker(worker_env, tmp_path))
    stack.start(Beat(stack.env, tmp_path))  # should every retry land while it is down, the sweep rescues
    web = stack.start(Daphne(stack.env, tmp_path))

    async def scenario():
        client = WidgetClient(web.widget_url, shop.public_key)
        await client.connect()
        asked = await client.send("How long does shipping take?", "blip-1")
        await in_db(lambda: wait_answering(asked["id"]))
        proxy.cut()  # the worker's database restarts while it answers
        await asyncio.sleep(6)
        proxy.restore()
        reply = await in_db(reply_in_db, asked["id"], 90)
        await client.wait_seen(reply.id, 30)
        await client.close()
        return asked

    try:
        asked = asyncio.run(scenario())
    finally:
        proxy.close()
    try:
        wait_until(lambda: Message.objects.filter(pk=asked["id"], answer_state="answered").exists(), 40, "answered")
    except AssertionError as exc:
        state = Message.objects.filter(pk=asked["id"]).values("answer_state", "answer_attempts").first()
        raise AssertionError(f"{exc}; the message is {state}\n--- worker:\n{worker.text()[-6000:]}") from None
    message = Message.objects.get(pk=asked["id"])
    reply = Message.objects.get(reply_to=message)
    assert (reply.sender, reply.text) == ("bot", SHIPPING)
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert (conversation.status, conversation.handoff_reason) == ("bot", "")
    assert message.answer_state == "answered" and message.answer_attempts >= 2
    assert "Retry in" in worker.text() or "answer sweep" in worker.text()
    assert "bot unavailable" not in worker.text()


def wait_answering(message_id: int) -> None:
    deadline = time.monotonic() + 60
    while not Message.objects.filter(pk=message_id, answer_state="answering").exists():
        assert time.monotonic() < deadline, "the worker never started answering"
        time.sleep(0.1)


def test_a_resend_of_a_stored_message_whose_task_was_lost_gets_it_answered(shop, stack, tmp_path):
    web = stack.start(Daphne(stack.env, tmp_path))

    async def scenario():
        client = WidgetClient(web.widget_url, shop.public_key)
        await client.connect()
        asked = await client.send("How long does shipping take?", "lost-1")
        # Redis lost the task (no worker had taken it yet); the message is stored, queued.
        subprocess.run(["redis-cli", "-p", str(stack.redis.port), "DEL", stack.env["CELERY_QUEUE"]], check=True,
                       capture_output=True)
        await asyncio.to_thread(stack.start, Worker(stack.env, tmp_path))
        await asyncio.sleep(float(stack.env["ANSWER_RESEND_SECONDS"]) + 1)
        assert not await in_db(lambda: Message.objects.filter(reply_to_id=asked["id"]).exists())
        # The widget re-sends it (its ack was lost with a socket, say): acked again, and queued again.
        again = await client.send("How long does shipping take?", "lost-1")
        reply = await in_db(reply_in_db, asked["id"], 60)
        await client.wait_seen(reply.id, 30)
        await client.close()
        return asked, again

    asked, again = asyncio.run(scenario())
    assert again["id"] == asked["id"]
    assert Message.objects.filter(sender="visitor").count() == 1
    message = Message.objects.get(pk=asked["id"])
    assert Message.objects.get(reply_to=message).text == SHIPPING
    wait_until(lambda: Message.objects.filter(pk=message.pk, answer_state="answered").exists(), 40, "answered")

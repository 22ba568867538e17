"""Faults with real processes: a worker killed mid-answer, the web process restarted under connected
visitors and agents, Redis gone for 10 s, the database restarting. Each test runs its own daphne,
workers, beat and Redis (loopback, free ports); PostgreSQL is the machine's, reached through a proxy
of the test's own where the test cuts it."""
import asyncio
import json
import os
import signal
import time
from urllib.parse import urlsplit

import pytest
import websockets
from django.conf import settings as django_settings
from django.test import Client

from chatbot.models import Conversation, Message
from tests.conftest import needs_services
from tests.factories import agent_of
from tests.live_processes import (  # noqa: F401 - shop and stack are fixtures
    ORIGIN, SHIPPING, Beat, Daphne, TcpProxy, WidgetClient, Worker, database_url_via, in_db, reply_in_db, shop,
    stack, wait_until,
)

pytestmark = [pytest.mark.live, needs_services, pytest.mark.django_db(transaction=True)]


def conversation_messages(conversation_id: int, private: bool = False) -> list[tuple[int, int]]:
    rows = Message.objects.filter(conversation_id=conversation_id)
    if not private:
        rows = rows.filter(private=False)
    return list(rows.order_by("seq").values_list("id", "seq"))


def assert_once_each(conversation_id: int, *logs) -> None:
    """Every visitor message the bot held has exactly one reply (bot or notice), and its state says so (the
    worker records it just after the reply is stored, so it may take a moment; when a fault cut in between, the
    task's retry records it, after a back-off of up to ANSWER_RETRY_BACKOFF_MAX, 30 s, or the sweep does).
    `logs`: processes whose log tails a failure shows."""
    for message in Message.objects.filter(conversation_id=conversation_id, sender="visitor").exclude(answer_state=""):
        replies = Message.objects.filter(reply_to=message).exclude(sender="visitor").count()
        assert replies == 1, (message.text, replies)
        try:
            wait_until(lambda: Message.objects.filter(pk=message.pk,
                                                      answer_state__in=("answered", "handed_off")).exists(),
                       45, f"the final state of {message.text!r}")
        except AssertionError as exc:
            state = Message.objects.filter(pk=message.pk).values("answer_state", "answer_attempts").first()
            tails = "\n".join(f"--- {p.name}:\n{p.text()[-4000:]}" for p in logs)
            raise AssertionError(f"{exc}; the message is {state}\n{tails}") from None


# --- (a) a worker killed mid-answer -----------------------------------------------------------


@pytest.mark.parametrize("kill", ["whole worker", "pool child"])
def test_worker_killed_mid_answer_the_answer_still_arrives_once_within_seconds(shop, stack, tmp_path, kill):
    """kill -9 while it answers (the first attempt sleeps ANSWER_DEBUG_DELAY). A whole worker (solo pool)
    leaves its task unacked until the broker's visibility timeout: the sweep gives the message to the
    spare worker when the heartbeats stop. A prefork pool child: its parent rejects the task back to the
    queue (reject_on_worker_lost) and the redelivery takes the message over."""
    env = stack.env
    pool = "solo" if kill == "whole worker" else "prefork"
    slow = stack.start(Worker({**env, "ANSWER_DEBUG_DELAY": "300"}, tmp_path, pool=pool, name="slow"))
    web = stack.start(Daphne(env, tmp_path))
    if kill == "whole worker":
        stack.start(Beat(env, tmp_path))

    async def scenario():
        client = WidgetClient(web.widget_url, shop.public_key)
        await client.connect()
        asked = await client.send("How long does shipping take?", "k-1")
        await in_db(wait_until, lambda: Message.objects.filter(
            pk=asked["id"], answer_state="answering").exists(), 60, "the slow worker to start answering")
        if kill == "whole worker":
            await asyncio.to_thread(stack.start, Worker(env, tmp_path, name="spare"))
            victim = slow.pid
        else:
            victim = wait_until(slow.children, 10, "the pool's child")[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        reply = await in_db(reply_in_db, asked["id"], 60)
        await client.wait_seen(reply.id, 30)
        elapsed = time.monotonic() - killed_at
        await client.drain(3)  # nothing else comes: no second reply
        await client.close()
        return client, asked, elapsed

    client, asked, elapsed = asyncio.run(scenario())
    print(f"{kill}: answer arrived {elapsed:.1f} s after kill -9")
    assert elapsed < 30  # seconds, not the hour (or the 420 s) of the broker's visibility timeout
    assert_once_each(Message.objects.get(pk=asked["id"]).conversation_id)
    message = Message.objects.get(pk=asked["id"])
    reply = Message.objects.get(reply_to=message)
    assert (reply.sender, reply.text) == ("bot", SHIPPING)
    assert message.answer_state == "answered" and message.answer_attempts == 2
    assert [m["id"] for m in sorted(client.seen.values(), key=lambda m: m["seq"])] == [message.id, reply.id]
    client.check_in_order_without_gaps()


# --- (b) the web process restarts -------------------------------------------------------------


def _agent_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"


class AgentClient:
    """The console's side: live `message` frames, and after a reconnect the conversation's transcript."""

    def __init__(self, web: Daphne, cookie: str):
        self.web, self.cookie = web, cookie
        self.seen: dict[int, dict] = {}
        self.ws = None

    async def connect(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ws = await websockets.connect(
                    f"ws://127.0.0.1:{self.web.port}/ws/agent/", origin=self.web.url,
                    additional_headers={"Cookie": self.cookie}, open_timeout=5)
                inbox = await self.next("inbox", 10)
                return inbox
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def next(self, wanted: str, timeout: float, **fields) -> dict:
        async def loop():
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] == "message":
                    self.seen[frame["message"]["id"]] = frame["message"]
                if frame["type"] == wanted and all(frame.get(k) == v for k, v in fields.items()):
                    return frame

        return await asyncio.wait_for(loop(), timeout)

    async def until_seen(self, message_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while message_id not in self.seen:
            await self.next("message", max(deadline - time.monotonic(), 0.1))

    async def transcript(self, conversation_id: int) -> list[dict]:
        await self.ws.send(json.dumps({"type": "open", "conversation": conversation_id}))
        frame = await self.next("transcript", 10)
        for message in frame["messages"]:
            self.seen[message["id"]] = message
        return frame["messages"]


def test_web_restart_visitor_and_agent_reconnect_resume_and_miss_nothing(shop, stack, tmp_path):
    env = stack.env
    stack.start(Worker({**env, "ANSWER_DEBUG_DELAY": "3"}, tmp_path))  # replies come while the web is down
    web = stack.start(Daphne(env, tmp_path))
    agent = agent_of(shop)
    cookie = _agent_cookie(agent)

    async def scenario():
        visitor = WidgetClient(web.widget_url, shop.public_key)
        console = AgentClient(web, cookie)
        await console.connect()
        await visitor.connect()
        first = await visitor.send("How long does shipping take?", "w-1")
        reply = await in_db(reply_in_db, first["id"], 60)
        await visitor.wait_seen(reply.id, 30)
        await console.until_seen(reply.id, 30)
        conversation_id = reply.conversation_id

        second = await visitor.send("What is your return policy?", "w-2")
        web.kill9()  # before the answer to it: the worker publishes it while nobody listens
        await asyncio.to_thread(web.start)
        # Both reconnect: the widget resumes from the highest seq it saw, the console reads the transcript.
        await visitor.connect()
        await console.connect()
        transcript = await console.transcript(conversation_id)
        second_reply = await in_db(reply_in_db, second["id"], 60)
        await visitor.wait_seen(second_reply.id, 30)
        if second_reply.id not in console.seen:
            await console.until_seen(second_reply.id, 30)
        # And live again after the restart.
        third = await visitor.send("Which payment methods do you accept?", "w-3")
        third_reply = await in_db(reply_in_db, third["id"], 60)
        await visitor.wait_seen(third_reply.id, 30)
        await console.until_seen(third_reply.id, 30)
        await visitor.drain(1)
        for ws in (visitor.ws, console.ws):
            await ws.close()
        return visitor, console, transcript, conversation_id

    visitor, console, transcript, conversation_id = asyncio.run(scenario())
    stored = conversation_messages(conversation_id)
    assert len(stored) == 6 and [seq for _, seq in stored] == list(range(1, 7))
    assert sorted((m["id"], m["seq"]) for m in visitor.seen.values()) == stored
    assert sorted((m["id"], m["seq"]) for m in console.seen.values()) == stored
    assert [m["seq"] for m in transcript] == list(range(1, len(transcript) + 1))  # in order, no gap, no duplicate
    assert Message.objects.filter(conversation_id=conversation_id, sender="bot").count() == 3
    assert_once_each(conversation_id)


# --- (c) Redis stops for 10 s -----------------------------------------------------------------


def test_redis_gone_for_10_s_clients_are_told_and_it_catches_up(shop, stack, tmp_path):
    env = stack.env
    worker = stack.start(Worker(env, tmp_path))
    stack.start(Beat(env, tmp_path))
    web = stack.start(Daphne(env, tmp_path))

    async def scenario():
        client = WidgetClient(web.widget_url, shop.public_key)
        await client.connect()
        first = await client.send("How long does shipping take?", "r-1")
        await client.wait_seen((await in_db(reply_in_db, first["id"], 60)).id, 30)

        # A message stored, its task in Redis (no worker takes it now), then Redis dies with it.
        await asyncio.to_thread(worker.stop)
        stranded = await client.send("What is your return policy?", "r-2")
        stack.redis.kill9()
        down_at = time.monotonic()
        told = None
        try:
            while told is None:
                frame = await client.frame(10)
                told = frame if frame["type"] == "error" and frame["code"] == "unavailable" else None
            await asyncio.wait_for(client.ws.wait_closed(), 10)
        except websockets.exceptions.ConnectionClosed:
            pass
        close_code = client.ws.close_code
        # While it is down, connects are refused the same way, and the web process stays up.
        refusals = []
        while time.monotonic() - down_at < 10:
            try:
                async with websockets.connect(web.widget_url(shop.public_key, client.visitor), origin=ORIGIN,
                                              open_timeout=5) as ws:
                    refusals.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
                    await asyncio.wait_for(ws.wait_closed(), 5)
                    refusals[-1]["close"] = ws.close_code
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
                refusals.append({"exception": repr(exc)})
            assert web.alive()
            await asyncio.sleep(1)
        # Redis is back (empty: the stranded task is gone), and so is a worker.
        stack.start(stack.redis)
        await asyncio.to_thread(stack.start, Worker(env, tmp_path))
        await client.connect()
        answer = await in_db(reply_in_db, stranded["id"], 60)  # the sweep queued it again
        await client.wait_seen(answer.id, 30)
        third = await client.send("Which payment methods do you accept?", "r-3")
        await client.wait_seen((await in_db(reply_in_db, third["id"], 60)).id, 30)
        await client.close()
        return client, told, close_code, refusals, stranded

    client, told, close_code, refusals, stranded = asyncio.run(scenario())
    assert web.alive()
    assert told is not None and "unavailable" in told["detail"].lower()
    assert close_code == 4503  # try again later, not 1011
    assert refusals and all(r.get("code") == "unavailable" and r.get("close") == 4503 for r in refusals), refusals
    assert_once_each(Message.objects.get(pk=stranded["id"]).conversation_id)
    message = Message.objects.get(pk=stranded["id"])
    assert message.answer_state == "answered" and message.answer_attempts >= 2  # one lost delivery, one answer
    conversation_id = message.conversation_id
    assert sorted((m["id"], m["seq"]) for m in client.seen.values()) == conversation_messages(conversation_id)
    client.check_in_order_without_gaps()
    assert "Traceback" not in web.text(), web.text()[-3000:]


# --- (d) the database restarts ----------------------------------------------------------------


def test_database_restart_messages_are_refused_with_unavailable_and_stored_once_when_back(
        shop, stack, tmp_path, test_database_url):
    proxy = TcpProxy(urlsplit(test_database_url).port or 5432)
    env = {**stack.env, "DATABASE_URL": database_url_via(test_database_url, proxy.port)}
    worker = stack.start(Worker(env, tmp_path))
    beat = stack.start(Beat(stack.env, tmp_path))  # the sweep, as deployed: settles what every retry missed
    web = stack.start(Daphne(env, tmp_path))

    async def scenario():
        client = WidgetClient(web.widget_url, shop.public_key)
        await client.connect()
        first = await client.send("How long does shipping take?", "d-1")
        await client.wait_seen((await in_db(reply_in_db, first["id"], 60)).id, 30)
        proxy.cut()
        cut_at = time.monotonic()
        sending = asyncio.create_task(client.send("What is your return policy?", "d-2", timeout=90))
        await asyncio.sleep(5)
        refused_meanwhile = [e for e in client.errors if e.get("client_id") == "d-2"]
        stored_meanwhile = await in_db(lambda: Message.objects.filter(client_id="d-2").count())
        proxy.restore()
        second = await sending
        back_after = time.monotonic() - cut_at
        await client.wait_seen((await in_db(reply_in_db, second["id"], 60)).id, 30)
        await client.close()
        return client, refused_meanwhile, stored_meanwhile, back_after

    try:
        client, refused, stored_meanwhile, back_after = asyncio.run(scenario())
    finally:
        proxy.close()
    print(f"database cut: {len(refused)} refusals, stored {back_after:.1f} s after the cut")
    assert refused and all(e["code"] == "unavailable" for e in refused)
    assert stored_meanwhile == 0  # nothing half-stored while it was away
    assert Message.objects.filter(client_id="d-2").count() == 1
    assert web.alive() and 1011 not in client.closes
    conversation = Conversation.objects.get(tenant=shop)
    assert conversation.status == "bot"
    assert sorted((m["id"], m["seq"]) for m in client.seen.values()) == conversation_messages(conversation.id)
    assert_once_each(conversation.id, worker, beat)

"""The whole answer path with real processes: daphne, a Celery worker, PostgreSQL and Redis.

The client speaks only the documented widget protocol over a real websocket.
"""
import asyncio
import json

import pytest
import websockets

from chatbot.models import Conversation, Message
from tests.factories import KnowledgeEntryFactory, TenantFactory

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ORIGIN = "https://shop.example"


def ws_url(base: str, key: str, visitor: str = "") -> str:
    url = base.replace("http://", "ws://") + f"/ws/widget/?key={key}"
    return url + (f"&visitor={visitor}" if visitor else "")


async def next_frame(ws, wanted_type: str, timeout: float = 60) -> dict:
    async def loop():
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == wanted_type:
                return frame

    return await asyncio.wait_for(loop(), timeout)


@pytest.fixture
def shop(db):
    tenant = TenantFactory(allowed_origins=[ORIGIN])
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?",
                          answer="Standard shipping takes 3 to 5 business days.")
    KnowledgeEntryFactory(tenant=tenant, question="What is your return policy?",
                          answer="You can return unused items within 30 days.")
    KnowledgeEntryFactory(tenant=tenant, question="Which payment methods do you accept?",
                          answer="We accept Visa, Mastercard and PayPal.")
    return tenant


def test_worker_answers_over_the_websocket(shop, live_server_url, celery_worker):
    async def chat():
        async with websockets.connect(ws_url(live_server_url, shop.public_key), origin=ORIGIN) as ws:
            session = await next_frame(ws, "session", 10)
            await ws.send(json.dumps({"type": "message", "text": "how many days until my parcel ships to me?",
                                      "client_id": "e2e-1"}))
            ack = await next_frame(ws, "ack", 10)
            reply = await next_frame(ws, "message")
            return session, ack, reply

    session, ack, reply = asyncio.run(chat())
    assert ack["message"]["sender"] == "visitor"
    assert reply["message"]["sender"] == "bot"
    assert reply["message"]["text"] == "Standard shipping takes 3 to 5 business days."
    assert reply["message"]["seq"] == ack["message"]["seq"] + 1
    stored = Message.objects.get(pk=reply["message"]["id"])
    assert stored.reply_to_id == ack["message"]["id"]
    assert stored.grounding[0]["question"] == "How long does shipping take?"
    assert stored.model_version and stored.latency_ms > 0


def test_request_for_a_person_hands_off_and_bot_stays_quiet(shop, live_server_url, celery_worker):
    async def chat():
        async with websockets.connect(ws_url(live_server_url, shop.public_key), origin=ORIGIN) as ws:
            await next_frame(ws, "session", 10)
            await ws.send(json.dumps({"type": "message", "text": "Can I talk to a real person please",
                                      "client_id": "h-1"}))
            await next_frame(ws, "ack", 10)
            note = await next_frame(ws, "message")
            await ws.send(json.dumps({"type": "message", "text": "hello?", "client_id": "h-2"}))
            await next_frame(ws, "ack", 10)
            try:
                extra = await next_frame(ws, "message", timeout=3)
            except asyncio.TimeoutError:
                extra = None
            return note, extra

    note, extra = asyncio.run(chat())
    assert note["message"]["sender"] == "system"
    assert note["message"]["text"] == shop.no_agent_text  # no agent has the console open
    assert extra is None
    conversation = Conversation.objects.get(tenant=shop)
    assert conversation.status == Conversation.Status.WAITING
    assert conversation.handoff_reason == "visitor asked for a person"


def test_resume_after_reconnect_misses_nothing(shop, live_server_url, celery_worker):
    async def chat():
        async with websockets.connect(ws_url(live_server_url, shop.public_key), origin=ORIGIN) as ws:
            session = await next_frame(ws, "session", 10)
            await ws.send(json.dumps({"type": "message", "text": "what's your return policy", "client_id": "r-1"}))
            ack = await next_frame(ws, "ack", 10)
        # Gone before the answer could arrive; it is stored and comes back on resume.
        await asyncio.sleep(0.5)
        for _ in range(120):
            if await asyncio.to_thread(lambda: Message.objects.filter(sender="bot").exists()):
                break
            await asyncio.sleep(0.5)
        async with websockets.connect(ws_url(live_server_url, shop.public_key, session["visitor"]),
                                      origin=ORIGIN) as ws:
            again = await next_frame(ws, "session", 10)
            await ws.send(json.dumps({"type": "resume", "after_seq": ack["message"]["seq"]}))
            missed = await next_frame(ws, "message", 10)
        return again, missed

    again, missed = asyncio.run(chat())
    assert [m["sender"] for m in again["messages"]] == ["visitor", "bot"]
    assert missed["message"]["text"] == "You can return unused items within 30 days."

"""The agent socket through a Redis outage (a Redis of the test's own, on its own port, stopped for 10 s
under a real daphne): the console is told that live updates are interrupted, the socket stays up and
keeps working (replies are stored and acked), and when Redis is back the console gets its inbox and open
conversation afresh and live updates flow again, the group memberships the restarted Redis forgot
included."""
import asyncio
import json
import time

import pytest
import websockets

from chatbot.models import Message
from chatbot.sockets.outages import FEED_LOST
from tests.conftest import needs_services
from tests.factories import agent_of
from tests.live_processes import Daphne, WidgetClient, in_db, shop, stack  # noqa: F401 - fixtures
from tests.test_faults import AgentClient, _agent_cookie

pytestmark = [pytest.mark.live, needs_services, pytest.mark.django_db(transaction=True)]


def test_redis_gone_for_10_s_the_agent_socket_stays_up_is_told_and_resyncs(shop, stack, tmp_path):
    web = stack.start(Daphne(stack.env, tmp_path))
    cookie = _agent_cookie(agent_of(shop))

    async def scenario():
        console = AgentClient(web, cookie)
        await console.connect()
        visitor = WidgetClient(web.widget_url, shop.public_key)
        await visitor.connect()
        first = await visitor.send("Hello, anyone there?", "a-1")
        await console.until_seen(first["id"], 10)  # live
        conversation_id = (await in_db(lambda: Message.objects.get(pk=first["id"]).conversation_id))
        await console.ws.send(json.dumps({"type": "take_over", "conversation": conversation_id}))
        await console.next("conversation", 10)
        await console.transcript(conversation_id)  # the console shows it: resent after the outage
        socket = console.ws

        stack.redis.kill9()
        down_at = time.monotonic()
        told = await console.next("error", 10, code="unavailable")
        told_after = time.monotonic() - down_at
        # The socket stays up and works: a reply is stored and acked, the inbox answers.
        await socket.send(json.dumps({"type": "message", "conversation": conversation_id, "text": "Yes, Ana here.",
                                      "client_id": "during-outage"}))
        ack = await console.next("ack", 10, client_id="during-outage")
        await socket.send(json.dumps({"type": "inbox", "tab": "mine"}))
        mine = await console.next("inbox", 10, tab="mine")
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        assert socket.state is websockets.protocol.State.OPEN

        stack.start(stack.redis)  # back, empty: the groups are forgotten
        resync = await console.next("inbox", 30, resync=True, tab="all")
        resync_mine = await console.next("inbox", 10, resync=True, tab="mine")
        transcript = await console.next("transcript", 10)
        # Live again: the visitor reconnects and writes; the console hears it on the same socket.
        await visitor.connect()
        second = await visitor.send("Great, thanks!", "a-2")
        await console.until_seen(second["id"], 10)
        assert console.ws is socket and socket.state is websockets.protocol.State.OPEN
        await visitor.close()
        await socket.close()
        return told, told_after, ack, mine, resync, resync_mine, transcript, conversation_id

    told, told_after, ack, mine, resync, resync_mine, transcript, conversation_id = asyncio.run(scenario())
    assert told["detail"] == FEED_LOST and "client_id" not in told and told_after < 5
    assert ack["message"]["text"] == "Yes, Ana here."
    assert [c["id"] for c in mine["conversations"]] == [conversation_id]
    summary = next(c for c in resync["conversations"] if c["id"] == conversation_id)
    assert summary["last_message"]["text"] == "Yes, Ana here."  # what happened while live updates were off
    assert [c["id"] for c in resync_mine["conversations"]] == [conversation_id]
    assert transcript["conversation"]["id"] == conversation_id
    texts = [m["text"] for m in transcript["messages"]]
    assert texts[0] == "Hello, anyone there?" and texts[-1] == "Yes, Ana here."  # (a "joined" notice between)
    assert web.alive() and "Traceback" not in web.text(), web.text()[-3000:]

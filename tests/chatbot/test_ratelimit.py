"""Rate limits in Redis per visitor, address and tenant: clear error frames, and reconnecting resets nothing."""
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chatbot.sockets import ratelimit

from chatbot.conversations import services
from chatbot.asgi import application
from chatbot.models import Conversation, Message, Visitor
from tests.chatbot.sockets import WIDGET_ORIGIN
from tests.factories import MessageFactory, TenantFactory

db = database_sync_to_async


@pytest.fixture(autouse=True)
def own_counters(settings):
    """Counters of this test's own (a fresh key prefix), whatever ran before."""
    settings.RATE_LIMIT_PREFIX = f"test-rl-{uuid.uuid4().hex[:10]}"
    ratelimit.reset_memory()


def limits(settings, **rules):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, **rules}


async def widget(tenant, visitor: str = "", address: str = "") -> tuple[WebsocketCommunicator, dict]:
    """A widget socket; `address` is sent as X-Forwarded-For (trusted when RATE_LIMIT_TRUSTED_PROXIES is 1)."""
    headers = [(b"origin", WIDGET_ORIGIN.encode())]
    if address:
        headers.append((b"x-forwarded-for", address.encode()))
    path = f"/ws/widget/?key={tenant.public_key}" + (f"&visitor={visitor}" if visitor else "")
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm, await comm.receive_json_from(timeout=5)


async def send_message(comm, text: str) -> dict:
    await comm.send_json_to({"type": "message", "text": text, "client_id": text})
    return await comm.receive_json_from(timeout=5)


def rule(name: str, limit: int, window: int = 60) -> ratelimit.Rule:
    return ratelimit.Rule(name, limit, window)


# --- the counter ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis", "memory", "redis-down"])
async def test_a_rule_allows_its_limit_then_refuses_with_retry_after(settings, backend):
    if backend == "memory":
        settings.REDIS_URL = ""
    elif backend == "redis-down":  # nothing listens there: the process counts in memory instead
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
    elif not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    visitor, tenant = rule("visitor_messages", 3, 30), rule("tenant_messages", 100)
    for _ in range(3):
        await ratelimit.hit([(visitor, "v1"), (tenant, "t1")])
    for _ in range(2):
        with pytest.raises(ratelimit.Limited) as refused:
            await ratelimit.hit([(visitor, "v1"), (tenant, "t1")])
        assert refused.value.code == "rate_limited" and refused.value.rule == visitor
        assert 1 <= refused.value.retry_after <= 30
    await ratelimit.hit([(visitor, "v2"), (tenant, "t1")])  # another visitor of the same tenant
    # Refused requests counted nowhere: the tenant has seen 4, so 96 more pass.
    for i in range(96):
        await ratelimit.hit([(tenant, "t1")])
    with pytest.raises(ratelimit.Limited):
        await ratelimit.hit([(tenant, "t1")])


async def test_turned_off_rules_and_missing_subjects_are_skipped():
    await ratelimit.hit([(None, "v1"), (rule("ip_messages", 1), "")])
    await ratelimit.hit([(None, "v1"), (rule("ip_messages", 1), "")])


def test_tenant_overrides_replace_settings_and_bad_entries_are_ignored(settings):
    settings.RATE_LIMITS = {"visitor_messages": [20, 10], "ip_messages": [300, 60], "tenant_messages": [6000, 60]}
    rules = ratelimit.rules_for({"visitor_messages": [5, 60], "ip_messages": None, "tenant_messages": [0, 60],
                                 "bogus": [1, 1], "visitor_frames": "many"})
    assert rules["visitor_messages"] == rule("visitor_messages", 5)
    assert "ip_messages" not in rules  # null turns a rule off
    assert rules["tenant_messages"] == rule("tenant_messages", 6000)  # [0, 60] is no limit: ignored
    assert set(rules) == {"visitor_messages", "tenant_messages"}
    assert ratelimit.rules_for("not a dict") == ratelimit.rules_for({})


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "203.0.113.9", "127.0.0.1"),  # no trusted proxy: the peer, whatever the header says
    (1, "203.0.113.9", "203.0.113.9"),
    (1, "10.0.0.1, 203.0.113.9", "203.0.113.9"),  # the address our one proxy saw; the rest is the client's say
    (2, "10.0.0.1, 203.0.113.9", "10.0.0.1"),
    (1, "", "127.0.0.1"),
])
def test_client_address_trusts_x_forwarded_for_only_behind_configured_proxies(settings, proxies, forwarded, expected):
    settings.RATE_LIMIT_TRUSTED_PROXIES = proxies
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    assert ratelimit.client_ip({"client": ["127.0.0.1", 5000], "headers": headers}) == expected


# --- over the widget socket -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_reconnecting_does_not_reset_the_visitors_message_limit(settings):
    limits(settings, visitor_messages=[3, 60])
    tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
    comm, session = await widget(tenant)
    assert [(await send_message(comm, f"m{i}"))["type"] for i in range(3)] == ["ack"] * 3
    refused = await send_message(comm, "m3")
    assert (refused["type"], refused["code"], refused["client_id"]) == ("error", "rate_limited", "m3")
    assert 1 <= refused["retry_after"] <= 60 and refused["detail"]
    await comm.disconnect()
    for _ in range(3):  # reconnect, again and again: still limited
        comm, again = await widget(tenant, visitor=session["visitor"])
        assert again["visitor"] == session["visitor"]
        assert (await send_message(comm, "once more"))["code"] == "rate_limited"
        await comm.disconnect()
    assert await db(Message.objects.count)() == 3


@pytest.mark.django_db(transaction=True)
async def test_new_visitors_from_one_address_share_its_limit(settings):
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    limits(settings, ip_messages=[4, 60])
    tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
    answers = []
    for i in range(6):  # a fresh token each time, as a client dropping its token would
        comm, _ = await widget(tenant, address="198.51.100.7")
        answers.append((await send_message(comm, f"x{i}")).get("code", "ack"))
        await comm.disconnect()
    assert answers == ["ack"] * 4 + ["rate_limited"] * 2
    comm, _ = await widget(tenant, address="198.51.100.8")  # another address is not affected
    assert (await send_message(comm, "other"))["type"] == "ack"
    await comm.disconnect()
    # Refused first messages created nothing: 5 visitors and conversations, one per acked message.
    assert (await db(Visitor.objects.count)(), await db(Conversation.objects.count)()) == (5, 5)


@pytest.mark.django_db(transaction=True)
async def test_a_tenants_own_override_limits_its_visitors_together():
    tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN], rate_limits={"tenant_messages": [2, 60]})
    other = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
    codes = []
    for i in range(3):
        comm, _ = await widget(tenant)
        codes.append((await send_message(comm, f"t{i}")).get("code", "ack"))
        await comm.disconnect()
    assert codes == ["ack", "ack", "rate_limited"]
    comm, _ = await widget(other)
    assert (await send_message(comm, "elsewhere"))["type"] == "ack"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_feedback_csat_contact_and_typing_frames_are_limited(settings):
    limits(settings, visitor_frames=[4, 60])
    tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
    opened = await db(services.visitor_session_open)(tenant, None)
    bot = await db(MessageFactory)(conversation=opened.conversation, seq=1, sender="bot")
    comm, _ = await widget(tenant, visitor=opened.visitor.token)
    for rating in ("up", "down", "up", "down"):
        await comm.send_json_to({"type": "feedback", "message_id": bot.id, "rating": rating})
    assert await comm.receive_nothing(timeout=0.3)
    for frame in ({"type": "feedback", "message_id": bot.id, "rating": "up"}, {"type": "csat", "rating": 5},
                  {"type": "contact", "email": "a@example.com"}, {"type": "typing", "on": True}):
        await comm.send_json_to(frame)
        error = await comm.receive_json_from(timeout=5)
        assert error["code"] == "rate_limited" and error["retry_after"] >= 1
    await comm.disconnect()
    comm, _ = await widget(tenant, visitor=opened.visitor.token)  # a reconnect is still limited
    await comm.send_json_to({"type": "feedback", "message_id": bot.id, "rating": "up"})
    assert (await comm.receive_json_from(timeout=5))["code"] == "rate_limited"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_resume_sends_pages_and_visitor_resumes_limits_replays_across_sockets(settings):
    settings.WIDGET_HISTORY_LIMIT = 10
    settings.SOCKET_HISTORY_PAGE = 10
    settings.SOCKET_REPLAYS = [5, 60]
    limits(settings, visitor_resumes=[2, 60])
    tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
    opened = await db(services.visitor_session_open)(tenant, None)

    def long_conversation():
        for seq in range(1, 31):
            MessageFactory(conversation=opened.conversation, seq=seq, sender="bot", text=f"reply {seq}")
        Conversation.objects.filter(pk=opened.conversation.id).update(last_seq=30)

    await db(long_conversation)()
    for _ in range(2):  # a reconnect each time: the visitor's limit counts across her sockets
        comm, session = await widget(tenant, visitor=opened.visitor.token)
        assert [m["seq"] for m in session["messages"]] == list(range(21, 31))  # the newest 10, in order
        after = 0
        for page in range(3):  # one replay in three pages: the two that continue it count against nothing
            await comm.send_json_to({"type": "resume", "after_seq": after})
            frames = [await comm.receive_json_from(timeout=5) for _ in range(11)]
            assert [f["message"]["seq"] for f in frames[:10]] == list(range(after + 1, after + 11))
            assert frames[10] == {"type": "resumed", "after_seq": after, "last_seq": after + 10, "more": page < 2}
            after += 10
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
    comm, _ = await widget(tenant, visitor=opened.visitor.token)
    await comm.send_json_to({"type": "resume", "after_seq": 0})
    refused = await comm.receive_json_from(timeout=5)
    assert refused["code"] == "rate_limited" and refused["retry_after"] >= 1
    assert await comm.receive_nothing(timeout=0.2)
    await comm.send_json_to({"type": "resume", "after_seq": 25})  # still refused: the limit counts replays
    assert (await comm.receive_json_from(timeout=5))["code"] == "rate_limited"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_connects_are_limited_per_address_and_per_tenant(settings):
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    limits(settings, ip_connects=[3, 60])
    tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
    for _ in range(3):
        comm, session = await widget(tenant, address="192.0.2.1")
        assert session["type"] == "session"
        await comm.disconnect()
    comm, refused = await widget(tenant, address="192.0.2.1")
    assert refused["type"] == "error" and refused["code"] == "rate_limited" and refused["retry_after"] >= 1
    assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4429}

    limits(settings, ip_connects=None)
    crowded = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN], rate_limits={"tenant_connects": [2, 60]})
    codes = []
    for i in range(3):
        comm, first = await widget(crowded, address=f"192.0.2.{10 + i}")
        codes.append(first.get("code", first["type"]))
        await comm.disconnect()
    assert codes == ["session", "session", "rate_limited"]
    assert await db(Visitor.objects.count)() == 0

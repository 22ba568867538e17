"""The widget protocol, frame by frame, through the ASGI app on the real channel layer."""
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatbot.sockets import realtime
from chatbot.conversations.payloads import message_payload
from chatbot.asgi import application
from chatbot.models import Feedback, Message, Visitor
from tests.factories import MessageFactory, TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

ORIGIN = "https://shop.example"


async def connect(tenant, visitor: str = "", origin: str | None = ORIGIN, key: str | None = None):
    headers = [(b"origin", origin.encode())] if origin else []
    path = f"/ws/widget/?key={key if key is not None else tenant.public_key}"
    if visitor:
        path += f"&visitor={visitor}"
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def open_session(tenant, started: bool = True, **kwargs):
    """A socket and its session frame; `started`: of a visitor whose conversation exists already (a connect
    creates nothing: her first message would), else of a brand-new visitor."""
    if started and not kwargs.get("visitor"):
        from chatbot.conversations import services

        opened = await database_sync_to_async(services.visitor_session_open)(tenant, None)
        kwargs["visitor"] = opened.visitor.token
    comm = await connect(tenant, **kwargs)
    session = await comm.receive_json_from(timeout=5)
    assert session["type"] == "session"
    return comm, session


@pytest.fixture
async def tenant_():
    return await database_sync_to_async(TenantFactory)(allowed_origins=[ORIGIN])


async def test_first_frame_is_session_with_new_visitor_token(tenant_):
    comm, session = await open_session(tenant_, started=False)
    assert session["visitor"].startswith("v_")
    assert session["conversation"] is None  # created at her first message
    assert session["messages"] == []
    assert not await database_sync_to_async(Visitor.objects.filter(token=session["visitor"]).exists)()
    await comm.send_json_to({"type": "message", "text": "hello", "client_id": "first"})
    ack = await comm.receive_json_from(timeout=5)
    visitor = await database_sync_to_async(Visitor.objects.get)(token=session["visitor"], tenant=tenant_)
    stored = await database_sync_to_async(Message.objects.select_related("conversation").get)(pk=ack["message"]["id"])
    assert ack["conversation"] == stored.conversation_id and stored.conversation.visitor_id == visitor.id
    await comm.disconnect()


async def test_message_is_acked_with_stored_message(tenant_):
    comm, session = await open_session(tenant_)
    await comm.send_json_to({"type": "message", "text": "  Where is my order?  ", "client_id": "c-1"})
    ack = await comm.receive_json_from(timeout=5)
    assert ack["type"] == "ack" and ack["client_id"] == "c-1"
    msg = ack["message"]
    assert set(msg) == {"id", "seq", "sender", "text", "created_at"}
    assert msg["sender"] == "visitor" and msg["text"] == "Where is my order?" and msg["seq"] == 1
    stored = await database_sync_to_async(Message.objects.get)(pk=msg["id"])
    assert stored.conversation_id == session["conversation"]
    await comm.disconnect()


async def test_resend_with_same_client_id_stores_nothing(tenant_):
    comm, _ = await open_session(tenant_)
    await comm.send_json_to({"type": "message", "text": "hello", "client_id": "same"})
    first = await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "message", "text": "hello", "client_id": "same"})
    second = await comm.receive_json_from(timeout=5)
    assert first == second
    assert await database_sync_to_async(Message.objects.filter(client_id="same").count)() == 1
    await comm.disconnect()


async def test_seq_increases_by_one(tenant_):
    comm, _ = await open_session(tenant_)
    seqs = []
    for i in range(4):
        await comm.send_json_to({"type": "message", "text": f"m{i}", "client_id": f"c{i}"})
        seqs.append((await comm.receive_json_from(timeout=5))["message"]["seq"])
    assert seqs == [1, 2, 3, 4]
    await comm.disconnect()


async def test_returning_visitor_gets_open_conversation_history(tenant_):
    comm, session = await open_session(tenant_)
    await comm.send_json_to({"type": "message", "text": "first", "client_id": "a"})
    await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    comm2, again = await open_session(tenant_, visitor=session["visitor"])
    assert again["visitor"] == session["visitor"]
    assert again["conversation"] == session["conversation"]
    assert [m["text"] for m in again["messages"]] == ["first"]
    await comm2.disconnect()


async def test_resume_sends_every_message_after_seq_in_order_then_resumed(tenant_):
    comm, session = await open_session(tenant_)
    for i in range(3):
        await comm.send_json_to({"type": "message", "text": f"m{i}", "client_id": f"c{i}"})
        await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "resume", "after_seq": 1})
    frames = [await comm.receive_json_from(timeout=5) for _ in range(3)]
    assert [f["type"] for f in frames] == ["message", "message", "resumed"]
    assert [f["message"]["seq"] for f in frames[:2]] == [2, 3]
    assert frames[2] == {"type": "resumed", "after_seq": 1, "last_seq": 3, "more": False}
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_bot_message_published_to_group_reaches_socket(tenant_):
    comm, session = await open_session(tenant_)

    def store_bot_message():
        from chatbot.models import Conversation

        conv = Conversation.objects.get(pk=session["conversation"])
        conv.last_seq += 1
        conv.save()
        return MessageFactory(conversation=conv, seq=conv.last_seq, sender="bot", text="Hello from the bot")

    bot = await database_sync_to_async(store_bot_message)()
    layer = get_channel_layer()
    await layer.group_send(
        realtime.conversation_group(session["conversation"]),
        {"type": "chat.message", "message": message_payload(bot)},
    )
    frame = await comm.receive_json_from(timeout=5)
    assert frame == {"type": "message", "message": message_payload(bot)}
    await layer.group_send(realtime.conversation_group(session["conversation"]),
                           {"type": "chat.typing", "sender": "bot", "on": True})
    assert await comm.receive_json_from(timeout=5) == {"type": "typing", "sender": "bot", "on": True}
    await comm.disconnect()


async def test_a_bot_question_carries_its_choices_live_in_a_resume_and_in_the_session(tenant_):
    from chatbot.conversations import services

    comm, session = await open_session(tenant_)
    await comm.send_json_to({"type": "message", "text": "cancel my order", "client_id": "c-1"})
    ack = await comm.receive_json_from(timeout=5)
    question = await database_sync_to_async(services.bot_reply_store)(
        ack["message"]["id"], "Do you want me to cancel order NW-100001?", choices=["Yes", "No"])
    live = (await _frames_until(comm, "message"))[-1]["message"]
    assert live == message_payload(question) and live["choices"] == ["Yes", "No"]
    await comm.send_json_to({"type": "resume", "after_seq": 1})
    assert (await comm.receive_json_from(timeout=5))["message"]["choices"] == ["Yes", "No"]
    await comm.disconnect()
    comm, again = await open_session(tenant_, visitor=session["visitor"])
    assert [m.get("choices") for m in again["messages"]] == [None, ["Yes", "No"]]  # only where there are some
    await comm.disconnect()


async def test_visitor_feedback_is_stored_and_can_change(tenant_):
    comm, session = await open_session(tenant_)

    def bot_message():
        from chatbot.models import Conversation

        return MessageFactory(conversation=Conversation.objects.get(pk=session["conversation"]), seq=1, sender="bot")

    bot = await database_sync_to_async(bot_message)()
    await comm.send_json_to({"type": "feedback", "message_id": bot.id, "rating": "down"})
    await comm.send_json_to({"type": "feedback", "message_id": bot.id, "rating": "up"})
    assert await comm.receive_nothing(timeout=0.5)
    ratings = await database_sync_to_async(lambda: list(Feedback.objects.values_list("rating", "source")))()
    assert ratings == [("up", "visitor")]
    await comm.disconnect()


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"text": "no type"}', "invalid_frame"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "message", "text": "", "client_id": "x"}', "empty_text"),
        ('{"type": "message", "text": 5, "client_id": "x"}', "invalid_text"),
        ('{"type": "message", "text": "hi"}', "invalid_client_id"),
        ('{"type": "message", "text": "hi", "client_id": ""}', "invalid_client_id"),
        (json.dumps({"type": "message", "text": "x" * 2001, "client_id": "x"}), "text_too_long"),
        ('{"type": "resume", "after_seq": -1}', "invalid_after_seq"),
        ('{"type": "resume", "after_seq": "3"}', "invalid_after_seq"),
        ('{"type": "feedback", "message_id": 1, "rating": "meh"}', "invalid_rating"),
        ('{"type": "feedback", "message_id": 999999, "rating": "up"}', "message_not_found"),
    ],
)
async def test_bad_frames_get_error_store_nothing_and_keep_socket_open(tenant_, frame, code):
    comm, _ = await open_session(tenant_)
    await comm.send_to(text_data=frame)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code and error["detail"]
    assert await database_sync_to_async(Message.objects.count)() == 0
    await comm.send_json_to({"type": "message", "text": "still here", "client_id": "ok"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "ack"
    await comm.disconnect()


async def test_text_at_the_limit_is_accepted(tenant_):
    comm, _ = await open_session(tenant_)
    await comm.send_json_to({"type": "message", "text": "y" * 2000, "client_id": "long"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "ack"
    await comm.disconnect()


async def test_unknown_key_closes_with_4401(tenant_):
    comm = await connect(tenant_, key="pk_nope")
    error = await comm.receive_json_from(timeout=5)
    assert error["code"] == "invalid_key"
    assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}


async def test_foreign_origin_closes_with_4403(tenant_):
    comm = await connect(tenant_, origin="https://evil.example")
    error = await comm.receive_json_from(timeout=5)
    assert error["code"] == "origin_not_allowed"
    assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}


async def test_tenant_a_visitor_token_never_reaches_tenant_b_conversation(tenant_):
    comm_a, session_a = await open_session(tenant_)
    await comm_a.send_json_to({"type": "message", "text": "secret of A", "client_id": "a1"})
    await comm_a.receive_json_from(timeout=5)
    other = await database_sync_to_async(TenantFactory)(allowed_origins=[ORIGIN])
    comm_b, session_b = await open_session(other, visitor=session_a["visitor"])
    assert session_b["visitor"] != session_a["visitor"]
    assert session_b["conversation"] != session_a["conversation"]
    assert session_b["messages"] == []
    await comm_b.send_json_to({"type": "resume", "after_seq": 0})
    assert await comm_b.receive_json_from(timeout=5) == {"type": "resumed", "after_seq": 0, "last_seq": 0,
                                                         "more": False}
    assert await comm_b.receive_nothing(timeout=0.3)
    await comm_a.disconnect()
    await comm_b.disconnect()


async def test_feedback_on_another_conversations_message_is_refused(tenant_):
    comm_a, session_a = await open_session(tenant_)
    comm_b, _ = await open_session(tenant_)

    def bot_message():
        from chatbot.models import Conversation

        return MessageFactory(conversation=Conversation.objects.get(pk=session_a["conversation"]), seq=1)

    bot = await database_sync_to_async(bot_message)()
    await comm_b.send_json_to({"type": "feedback", "message_id": bot.id, "rating": "down"})
    assert (await comm_b.receive_json_from(timeout=5))["code"] == "message_not_found"
    assert not await database_sync_to_async(Feedback.objects.exists)()
    await comm_a.disconnect()
    await comm_b.disconnect()


async def test_rate_limit_refuses_a_burst(tenant_, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "visitor_messages": [3, 60]}
    comm, _ = await open_session(tenant_)
    codes = []
    for i in range(5):
        await comm.send_json_to({"type": "message", "text": f"m{i}", "client_id": f"r{i}"})
        frame = await comm.receive_json_from(timeout=5)
        codes.append(frame["type"] if frame["type"] == "ack" else frame["code"])
    assert codes == ["ack", "ack", "ack", "rate_limited", "rate_limited"]
    assert await database_sync_to_async(Message.objects.count)() == 3
    await comm.disconnect()


@hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=st.one_of(
    st.text(min_size=1, max_size=50),
    st.dictionaries(st.sampled_from(["type", "text", "client_id", "after_seq", "message_id", "rating"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans()), max_size=4),
))
def test_any_frame_gets_an_answer_and_never_breaks_the_socket(frame):
    """Whatever a client sends, the socket answers (or stays silent) and stays usable."""
    import asyncio

    async def scenario():
        tenant = await database_sync_to_async(TenantFactory)(allowed_origins=[ORIGIN])
        comm, _ = await open_session(tenant)
        await comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))
        while not await comm.receive_nothing(timeout=0.2):
            out = await comm.receive_json_from(timeout=1)
            assert out["type"] in {"ack", "error", "message"}
        await comm.send_json_to({"type": "message", "text": "ping", "client_id": "probe-" + str(id(frame))})
        frames = []
        while True:
            out = await comm.receive_json_from(timeout=5)
            frames.append(out)
            if out["type"] in {"ack", "error"}:
                break
        assert frames[-1]["type"] == "ack" or frames[-1]["code"] == "rate_limited"
        await comm.disconnect()

    asyncio.run(scenario())


# --- who answers: status, CSAT, contact, typing ---------------------------------------------


def _agent(tenant, username: str = "alice", online: bool = False):
    from chatbot.conversations import presence, services

    membership, _ = services.agent_add(tenant, username, password="pw-12345", name="Alice Smith")
    if online:
        presence.presence_join(membership.user, f"console-{username}")
    return membership.user


async def _frames_until(comm, frame_type: str) -> list[dict]:
    """Frames up to and including the first of `frame_type`."""
    frames = []
    while not frames or frames[-1]["type"] != frame_type:
        frames.append(await comm.receive_json_from(timeout=5))
    return frames


async def _resolved_session(tenant):
    """A widget socket whose conversation an agent has resolved (its frames read)."""
    from chatbot.conversations import ownership

    comm, session = await open_session(tenant)
    agent = await database_sync_to_async(_agent)(tenant)
    await database_sync_to_async(ownership.conversation_resolve)(session["conversation"], agent=agent)
    await _frames_until(comm, "status")
    await _frames_until(comm, "message")  # "This conversation was marked as resolved."
    return comm, session


async def test_session_says_the_bot_answers_and_whether_agents_are_online(tenant_):
    comm, session = await open_session(tenant_)
    assert (session["status"], session["agents_online"]) == ("bot", False)
    await comm.disconnect()
    await database_sync_to_async(_agent)(tenant_, online=True)
    comm, session = await open_session(tenant_, visitor=session["visitor"])
    assert (session["status"], session["agents_online"]) == ("bot", True)
    await comm.disconnect()


@pytest.mark.parametrize("online", [False, True])
async def test_hand_off_pushes_waiting_status_then_the_notice(tenant_, online):
    from chatbot.conversations import ownership

    await database_sync_to_async(_agent)(tenant_, online=online)
    comm, session = await open_session(tenant_)
    await database_sync_to_async(ownership.conversation_hand_off)(session["conversation"], "visitor asked",
                                                                 code="asked_for_person")
    status, notice = await comm.receive_json_from(timeout=5), await comm.receive_json_from(timeout=5)
    assert status == {"type": "status", "status": "waiting", "agents_online": online}
    assert notice["type"] == "message" and notice["message"]["sender"] == "system"
    wanted = tenant_.handoff_text if online else tenant_.no_agent_text
    assert notice["message"]["text"] == wanted
    await comm.disconnect()


async def test_csat_of_a_resolved_conversation_is_stored_and_a_new_one_replaces_it(tenant_):
    from chatbot.models import Conversation

    comm, session = await _resolved_session(tenant_)
    await comm.send_json_to({"type": "csat", "rating": 2})
    assert await comm.receive_json_from(timeout=5) == {"type": "csat", "rating": 2}
    await comm.send_json_to({"type": "csat", "rating": 5})
    assert await comm.receive_json_from(timeout=5) == {"type": "csat", "rating": 5}
    stored = await database_sync_to_async(Conversation.objects.get)(pk=session["conversation"])
    assert (stored.status, stored.csat) == ("resolved", 5)
    await comm.disconnect()


async def test_csat_before_the_conversation_is_resolved_is_refused(tenant_):
    from chatbot.models import Conversation

    comm, session = await open_session(tenant_)
    await comm.send_json_to({"type": "csat", "rating": 5})
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid_state" and error["detail"]
    stored = await database_sync_to_async(Conversation.objects.get)(pk=session["conversation"])
    assert stored.csat is None
    await comm.disconnect()


@pytest.mark.parametrize("rating", [0, 6, -1, "5", True, False, 4.5, None, [5]])
async def test_csat_outside_1_to_5_is_refused(tenant_, rating):
    from chatbot.models import Conversation

    comm, session = await _resolved_session(tenant_)
    await comm.send_json_to({"type": "csat", "rating": rating})
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid_rating" and error["detail"]
    stored = await database_sync_to_async(Conversation.objects.get)(pk=session["conversation"])
    assert stored.csat is None
    await comm.send_json_to({"type": "csat", "rating": 3})  # the socket still works
    assert await comm.receive_json_from(timeout=5) == {"type": "csat", "rating": 3}
    await comm.disconnect()


async def test_writing_after_resolve_reopens_for_the_bot_and_forgets_the_rating(tenant_):
    from chatbot.models import Conversation

    comm, session = await _resolved_session(tenant_)
    await comm.send_json_to({"type": "csat", "rating": 4})
    await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "message", "text": "one more thing", "client_id": "again"})
    frames = await _frames_until(comm, "ack")
    if not any(f["type"] == "status" for f in frames):  # the ack is sent at once, the status through the layer
        frames += await _frames_until(comm, "status")
    assert {"type": "status", "status": "bot", "agents_online": False} in frames
    stored = await database_sync_to_async(Conversation.objects.get)(pk=session["conversation"])
    assert (stored.status, stored.csat) == ("bot", None)
    await comm.disconnect()


async def test_contact_stores_the_visitors_address(tenant_):
    comm, session = await open_session(tenant_)
    await comm.send_json_to({"type": "contact", "email": "  ann@example.com "})
    assert await comm.receive_json_from(timeout=5) == {"type": "contact", "email": "ann@example.com"}
    visitor = await database_sync_to_async(Visitor.objects.get)(token=session["visitor"])
    assert visitor.email == "ann@example.com"
    await comm.disconnect()


@pytest.mark.parametrize("email", ["nope", "", "a@", "@example.com", "ann@example.com\n<b>", 5, None, True,
                                   ["ann@example.com"], "x" * 250 + "@example.com"])
async def test_contact_with_a_bad_address_is_refused_and_stores_nothing(tenant_, email):
    comm, session = await open_session(tenant_)
    await comm.send_json_to({"type": "contact", "email": email})
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid_email" and error["detail"]
    visitor = await database_sync_to_async(Visitor.objects.get)(token=session["visitor"])
    assert not visitor.email
    await comm.send_json_to({"type": "contact", "email": "ann@example.com"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "contact"
    await comm.disconnect()


async def test_visitor_typing_reaches_the_agents_not_the_widget(tenant_):
    comm, session = await open_session(tenant_)
    layer = get_channel_layer()
    console = await layer.new_channel()
    await layer.group_add(realtime.tenant_group(tenant_.id), console)
    for on in (True, False):
        await comm.send_json_to({"type": "typing", "on": on})
        event = await layer.receive(console)
        assert event == {"type": "agent.typing", "conversation": session["conversation"], "sender": "visitor", "on": on}
    assert await comm.receive_nothing(timeout=0.3)
    await layer.group_discard(realtime.tenant_group(tenant_.id), console)
    await comm.disconnect()


@pytest.mark.parametrize("frame", [{"type": "typing"}, {"type": "typing", "on": "yes"},
                                   {"type": "typing", "on": 1}, {"type": "typing", "on": None}])
async def test_typing_without_a_boolean_is_refused(tenant_, frame):
    comm, _ = await open_session(tenant_)
    await comm.send_json_to(frame)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid_typing" and error["detail"]
    await comm.disconnect()


async def test_errors_name_the_client_id_of_the_frame_they_answer_and_only_that(tenant_, settings):
    """A rate-limited resume or typing frame is not a message: its error names no message (the widget
    would take it for the first one in flight), unless the frame itself carried a client_id."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "visitor_resumes": [1, 60], "visitor_frames": [1, 60],
                            "visitor_messages": [1, 60]}
    comm, _ = await open_session(tenant_)
    await comm.send_json_to({"type": "resume", "after_seq": 0})
    await comm.send_json_to({"type": "resume", "after_seq": 0})
    assert (await comm.receive_json_from(timeout=5))["type"] == "resumed"
    refused = await comm.receive_json_from(timeout=5)
    assert refused["code"] == "rate_limited" and "client_id" not in refused
    await comm.send_json_to({"type": "typing", "on": True})
    await comm.send_json_to({"type": "typing", "on": False, "client_id": "t-1"})
    refused = await comm.receive_json_from(timeout=5)
    assert (refused["code"], refused["client_id"]) == ("rate_limited", "t-1")
    await comm.send_json_to({"type": "message", "text": "one", "client_id": "m-1"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "ack"
    await comm.send_json_to({"type": "message", "text": "two", "client_id": "m-2"})
    refused = await comm.receive_json_from(timeout=5)
    assert (refused["code"], refused["client_id"]) == ("rate_limited", "m-2")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()

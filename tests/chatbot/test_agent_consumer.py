"""The agent socket `/ws/agent/`, frame by frame, through the ASGI app on the real channel layer, with a real
logged-in session; the widget socket of the same conversation checks what reaches the visitor."""
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatbot.conversations import selectors
from chatbot.asgi import application
from chatbot.models import Conversation, Feedback, Message
from tests.chatbot.sockets import (
    agent_connect, agent_socket, drain, frame_where, frames_until, session_cookie, widget_socket,
)
from tests.chatbot.test_events import check_amsg, check_conv
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, UserFactory, VisitorFactory, agent_of

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async
S = Conversation.Status


@pytest.fixture
async def shop():
    return await db(TenantFactory)(allowed_origins=["https://shop.example"])


@pytest.fixture
async def ada(shop):
    return await db(agent_of)(shop, username="ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
async def grace(shop):
    return await db(agent_of)(shop, username="grace", first_name="Grace", last_name="Hopper")


async def visitor_conversation(tenant):
    """A widget socket whose visitor has written once, and her conversation id."""
    widget, session = await widget_socket(tenant)
    await widget.send_json_to({"type": "message", "text": "Hello, anyone there?", "client_id": "v-1"})
    assert (await widget.receive_json_from(timeout=5))["type"] == "ack"
    return widget, session["conversation"]


def status_of(conversation_id: int) -> tuple:
    conversation = Conversation.objects.get(pk=conversation_id)
    return conversation.status, conversation.assigned_agent_id


# --- connecting -------------------------------------------------------------------------------


async def test_no_session_gets_an_error_and_close_4401():
    comm = await agent_connect(None)
    error = await comm.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", "unauthenticated")
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_a_user_of_no_team_gets_close_4401():
    outsider = await db(UserFactory)()
    comm = await agent_connect(outsider)
    assert (await comm.receive_json_from(timeout=5))["code"] == "unauthenticated"
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_a_page_of_another_site_cannot_open_the_agent_socket(ada):
    cookie = await db(session_cookie)(ada)
    comm = WebsocketCommunicator(application, "/ws/agent/", headers=[
        (b"origin", b"https://evil.example"), (b"cookie", f"sessionid={cookie}".encode())])
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_first_frame_is_the_inbox_of_open_conversations_most_needy_first(shop, ada):
    def conversations():
        make = lambda **kw: ConversationFactory(visitor=VisitorFactory(tenant=shop), **kw)  # noqa: E731
        calm = make(status=S.BOT)
        waiting = make(status=S.WAITING)
        angry = make(status=S.BOT, last_sentiment="negative")
        make(status=S.RESOLVED)
        ConversationFactory(visitor=VisitorFactory(tenant=TenantFactory()))  # another store's
        return [waiting.id, angry.id, calm.id]

    expected = await db(conversations)()
    comm, inbox = await agent_socket(ada)
    assert [c["id"] for c in inbox["conversations"]] == expected
    for conv in inbox["conversations"]:
        check_conv(conv)
    await comm.disconnect()


# --- opening and owning -------------------------------------------------------------------


async def test_open_sends_the_transcript_with_why_on_bot_replies_and_notes_marked_private(shop, ada):
    def story():
        conversation = ConversationFactory(visitor=VisitorFactory(tenant=shop), last_seq=4, unread=2)
        asked = MessageFactory(conversation=conversation, seq=1, sender="visitor", text="Do you ship abroad?",
                               intent="shipping", intent_confidence=0.9, sentiment="neutral")
        MessageFactory(conversation=conversation, seq=2, sender="bot", text="Yes, we do.", reply_to=asked,
                       model_version="responder:v2", score=0.8, grounding=[{"id": 7, "question": "Abroad?"}])
        MessageFactory(conversation=conversation, seq=3, sender="agent", text="VIP customer", private=True, author=ada)
        MessageFactory(conversation=conversation, seq=4, sender="agent", text="Anything else?", author=ada)
        return conversation.id

    conversation_id = await db(story)()
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "open", "conversation": conversation_id})
    transcript = await frame_where(comm, type="transcript")
    assert set(transcript) == {"type", "conversation", "messages", "suggestions"}
    check_conv(transcript["conversation"])
    assert transcript["conversation"]["id"] == conversation_id and transcript["conversation"]["unread"] == 0
    messages = transcript["messages"]
    for message in messages:
        check_amsg(message)
    assert [m["seq"] for m in messages] == [1, 2, 3, 4]
    assert messages[0]["labels"]["intent"] == "shipping"
    why = messages[1]["why"]
    assert (why["intent"], why["intent_confidence"]) == ("shipping", 0.9)
    assert why["model_versions"] == {"reply": "responder:v2"}
    assert why["grounding"] == [{"id": 7, "question": "Abroad?"}]
    assert [(m["private"], m["author"]) for m in messages[2:]] == [(True, "Ada Lovelace"), (False, "Ada Lovelace")]
    assert transcript["suggestions"] == []
    assert await db(lambda: Conversation.objects.get(pk=conversation_id).unread)() == 0
    await comm.disconnect()


async def test_take_over_hand_back_and_resolve_change_hands_and_the_widget_hears(shop, ada):
    widget, conversation_id = await visitor_conversation(shop)
    comm, _ = await agent_socket(ada)

    await comm.send_json_to({"type": "take_over", "conversation": conversation_id})
    frames = await frames_until(comm, lambda f: f["type"] == "conversation" and f["conversation"]["status"] == "human")
    check_conv(frames[-1]["conversation"])
    assert frames[-1]["conversation"]["assignee"] == {"id": ada.pk, "name": "Ada Lovelace"}
    status = await frame_where(widget, type="status")
    assert (status["status"], status["agent"]) == ("human", "Ada Lovelace")
    joined = await frame_where(widget, type="message")
    assert (joined["message"]["sender"], joined["message"]["text"]) == ("system", "Ada Lovelace joined the chat.")
    assert await db(status_of)(conversation_id) == ("human", ada.pk)

    await comm.send_json_to({"type": "hand_back", "conversation": conversation_id})
    await frames_until(comm, lambda f: f["type"] == "conversation" and f["conversation"]["status"] == "bot")
    assert (await frame_where(widget, type="status"))["status"] == "bot"
    assert await db(status_of)(conversation_id) == ("bot", None)

    await comm.send_json_to({"type": "resolve", "conversation": conversation_id})
    await frames_until(comm, lambda f: f["type"] == "conversation" and f["conversation"]["status"] == "resolved")
    assert (await frame_where(widget, type="status"))["status"] == "resolved"
    assert await db(status_of)(conversation_id) == ("resolved", None)

    await comm.send_json_to({"type": "resolve", "conversation": conversation_id})
    error = await frame_where(comm, type="error")
    assert (error["code"], error["conversation"]) == ("invalid_state", conversation_id)
    await comm.disconnect()
    await widget.disconnect()


async def test_reassign_gives_the_conversation_to_a_colleague(shop, ada, grace):
    widget, conversation_id = await visitor_conversation(shop)
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "reassign", "conversation": conversation_id, "agent": grace.pk})
    frames = await frames_until(comm, lambda f: f["type"] == "conversation"
                                and (f["conversation"]["assignee"] or {}).get("id") == grace.pk)
    assert frames[-1]["conversation"]["status"] == "human"
    assert await db(status_of)(conversation_id) == ("human", grace.pk)
    await comm.send_json_to({"type": "reassign", "conversation": conversation_id, "agent": 10**9})
    error = await frame_where(comm, type="error")
    assert error["code"] == "assigned_to_other" and "Grace Hopper" in error["detail"]
    await comm.disconnect()
    await widget.disconnect()


async def test_take_over_of_a_colleagues_conversation_answers_assigned_to_other(shop, ada, grace):
    widget, conversation_id = await visitor_conversation(shop)
    grace_socket, _ = await agent_socket(grace)
    await grace_socket.send_json_to({"type": "take_over", "conversation": conversation_id})
    await frames_until(grace_socket, lambda f: f["type"] == "conversation" and f["conversation"]["status"] == "human")
    comm, _ = await agent_socket(ada)
    for frame_type in ("take_over", "hand_back", "resolve"):
        await comm.send_json_to({"type": frame_type, "conversation": conversation_id})
        error = await frame_where(comm, type="error")
        assert error == {"type": "error", "code": "assigned_to_other", "conversation": conversation_id,
                         "detail": "Grace Hopper is handling this conversation."}
    await comm.send_json_to({"type": "message", "conversation": conversation_id, "text": "Hi", "client_id": "a-1"})
    assert (await frame_where(comm, type="error"))["code"] == "assigned_to_other"
    assert await db(status_of)(conversation_id) == ("human", grace.pk)
    for socket in (comm, grace_socket, widget):
        await socket.disconnect()


# --- messages and notes ---------------------------------------------------------------------


async def test_message_is_acked_and_reaches_the_widget_live_with_its_author(shop, ada):
    widget, conversation_id = await visitor_conversation(shop)
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "message", "conversation": conversation_id, "text": "Hi, I'm Ada.",
                             "client_id": "a-1"})
    ack = await frame_where(comm, type="ack")
    assert ack["client_id"] == "a-1"
    check_amsg(ack["message"])
    assert (ack["message"]["sender"], ack["message"]["author"], ack["message"]["private"]) == (
        "agent", "Ada Lovelace", False)
    frames = await frames_until(widget, lambda f: f["type"] == "message" and f["message"]["sender"] == "agent")
    assert frames[-1]["message"] == {k: ack["message"][k] for k in ("id", "seq", "sender", "text", "created_at",
                                                                     "author")}
    assert ack["message"]["client_id"] == "a-1"
    # Replying to a conversation the bot had took it over first, so the bot stops.
    assert await db(status_of)(conversation_id) == ("human", ada.pk)
    await comm.disconnect()
    await widget.disconnect()


async def test_note_is_acked_and_never_reaches_the_widget(shop, ada):
    widget, conversation_id = await visitor_conversation(shop)
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "note", "conversation": conversation_id, "text": "Looks like a refund case",
                             "client_id": "n-1"})
    ack = await frame_where(comm, type="ack")
    check_amsg(ack["message"])
    assert (ack["message"]["private"], ack["message"]["author"]) == (True, "Ada Lovelace")
    live = await frame_where(comm, type="message")
    assert live["message"]["id"] == ack["message"]["id"] and live["message"]["private"] is True
    assert await widget.receive_nothing(timeout=0.7)
    # A note does not take the conversation from the bot, and the visitor's resume does not show it.
    assert await db(status_of)(conversation_id) == ("bot", None)
    await widget.send_json_to({"type": "resume", "after_seq": 0})
    resumed = await drain(widget)
    assert [f["message"]["text"] for f in resumed if f["type"] == "message"] == ["Hello, anyone there?"]
    assert resumed[-1]["type"] == "resumed"
    await comm.disconnect()
    await widget.disconnect()


async def test_a_returning_visitor_gets_agent_replies_with_author_and_never_notes(shop, ada):
    widget, conversation_id = await visitor_conversation(shop)
    token = (await db(lambda: Conversation.objects.get(pk=conversation_id).visitor.token)())
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "note", "conversation": conversation_id, "text": "internal", "client_id": "n"})
    await frame_where(comm, type="ack")
    await comm.send_json_to({"type": "message", "conversation": conversation_id, "text": "Hello!", "client_id": "m"})
    await frame_where(comm, type="ack")
    await widget.disconnect()
    again, session = await widget_socket(shop, visitor=token)
    assert session["conversation"] == conversation_id
    texts = [(m["sender"], m["text"], m.get("author")) for m in session["messages"]]
    assert texts == [("visitor", "Hello, anyone there?", None), ("system", "Ada Lovelace joined the chat.", None),
                     ("agent", "Hello!", "Ada Lovelace")]
    await comm.disconnect()
    await again.disconnect()


def test_the_bot_never_reads_agents_notes():
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=TenantFactory()))
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text="hi")
    MessageFactory(conversation=conversation, seq=2, sender="agent", text="secret note", private=True)
    MessageFactory(conversation=conversation, seq=3, sender="visitor", text="hello?")
    turns = selectors.conversation_recent_turns(conversation.id, 3, 10)
    assert [m.text for m in turns] == ["hi", "hello?"]


@pytest.mark.parametrize("frame_type", ["message", "note"])
async def test_resending_a_client_id_returns_the_same_ack_and_stores_nothing(shop, ada, frame_type):
    widget, conversation_id = await visitor_conversation(shop)
    comm, _ = await agent_socket(ada)
    frame = {"type": frame_type, "conversation": conversation_id, "text": "On it.", "client_id": "same"}
    await comm.send_json_to(frame)
    first = await frame_where(comm, type="ack")
    await comm.send_json_to({**frame, "text": "different text"})
    second = await frame_where(comm, type="ack")
    assert first == second
    count = await db(Message.objects.filter(conversation_id=conversation_id, client_id="same").count)()
    assert count == 1
    await comm.disconnect()
    await widget.disconnect()


# --- feedback ---------------------------------------------------------------------------------


async def test_feedback_stores_thumbs_and_corrections_with_the_original_values(shop, ada):
    def bot_reply():
        conversation = ConversationFactory(visitor=VisitorFactory(tenant=shop), last_seq=2)
        asked = MessageFactory(conversation=conversation, seq=1, sender="visitor", text="Where's my parcel?",
                               intent="greeting")
        return MessageFactory(conversation=conversation, seq=2, sender="bot", text="Hello!", reply_to=asked)

    reply = await db(bot_reply)()
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "feedback", "message_id": reply.id, "rating": "up"})
    ack = await frame_where(comm, type="ack")
    assert ack == {"type": "ack", "message_id": reply.id,
                   "feedback": {"rating": "up", "correct_reply": "", "correct_intent": ""}}
    await comm.send_json_to({"type": "feedback", "message_id": reply.id, "rating": "down",
                             "correct_reply": "It left our warehouse today.", "correct_intent": "order_status"})
    ack = await frame_where(comm, type="ack")
    assert ack["feedback"] == {"rating": "down", "correct_reply": "It left our warehouse today.",
                               "correct_intent": "order_status"}
    stored = await db(lambda: list(Feedback.objects.values(
        "source", "agent", "rating", "correction", "original_reply", "original_intent", "corrected_intent")))()
    assert stored == [{"source": "agent", "agent": ada.pk, "rating": "down",
                       "correction": "It left our warehouse today.", "original_reply": "Hello!",
                       "original_intent": "greeting", "corrected_intent": "order_status"}]
    await comm.send_json_to({"type": "feedback", "message_id": reply.id, "correct_intent": "x\u0000"})
    assert (await frame_where(comm, type="error"))["code"] == "invalid_intent"
    await comm.send_json_to({"type": "feedback", "message_id": reply.reply_to_id, "rating": "up"})
    assert (await frame_where(comm, type="error"))["code"] == "not_a_bot_reply"
    await comm.disconnect()


# --- typing -----------------------------------------------------------------------------------


async def test_typing_goes_both_ways(shop, ada):
    widget, conversation_id = await visitor_conversation(shop)
    comm, _ = await agent_socket(ada)
    await widget.send_json_to({"type": "typing", "on": True})
    typing = await frame_where(comm, type="typing")
    assert typing == {"type": "typing", "conversation": conversation_id, "sender": "visitor", "on": True}
    await comm.send_json_to({"type": "typing", "conversation": conversation_id, "on": True})
    assert await frame_where(widget, type="typing") == {"type": "typing", "sender": "agent", "on": True}
    await comm.send_json_to({"type": "typing", "conversation": conversation_id, "on": "yes"})
    assert (await frame_where(comm, type="error"))["code"] == "invalid_typing"
    await comm.disconnect()
    await widget.disconnect()


# --- live push --------------------------------------------------------------------------------


async def test_a_visitor_message_appears_live_as_message_and_conversation_frames(shop, ada):
    comm, _ = await agent_socket(ada)
    widget, session = await widget_socket(shop)
    await widget.send_json_to({"type": "message", "text": "Is anyone there?", "client_id": "v-9"})
    ack = await widget.receive_json_from(timeout=5)
    conversation_id = session["conversation"]
    message = await frame_where(comm, type="message")
    assert message["conversation"] == conversation_id
    check_amsg(message["message"])
    assert (message["message"]["id"], message["message"]["sender"], message["message"]["text"]) == (
        ack["message"]["id"], "visitor", "Is anyone there?")
    summary = await frames_until(comm, lambda f: f["type"] == "conversation"
                                 and f["conversation"]["last_message"] is not None)
    conv = summary[-1]["conversation"]
    check_conv(conv)
    assert (conv["id"], conv["unread"], conv["last_message"]["text"]) == (conversation_id, 1, "Is anyone there?")
    await comm.disconnect()
    await widget.disconnect()


# --- bad frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("frame, code", [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_frame"),
    ('{"conversation": 1}', "invalid_frame"),
    ('{"type": 5}', "invalid_frame"),
    ('{"type": "shout"}', "unknown_type"),
    ('{"type": "_error"}', "unknown_type"),
    ('{"type": "open", "conversation": "CONV"}', "not_found"),
    ('{"type": "open"}', "not_found"),
    ('{"type": "take_over", "conversation": 1.5}', "not_found"),
    ('{"type": "resolve", "conversation": true}', "not_found"),
    ('{"type": "typing", "conversation": [CONV], "on": true}', "not_found"),
    ('{"type": "feedback", "message_id": "7", "rating": "up"}', "not_found"),
    ('{"type": "open", "conversation": 1180591620717411303424}', "not_found"),
    ('{"type": "feedback", "message_id": -1180591620717411303424, "rating": "up"}', "not_found"),
    ('{"type": "inbox", "tab": "everything"}', "invalid_tab"),
    ('{"type": "inbox", "q": 5}', "invalid_query"),
    ('{"type": "message", "conversation": CONV, "text": "LONG", "client_id": "long"}', "text_too_long"),
    ('{"type": "message", "conversation": CONV, "text": "HUGE", "client_id": "big"}', "frame_too_large"),
    ('{"type": "note", "conversation": CONV, "text": "   ", "client_id": "e"}', "empty_text"),
    ('{"type": "message", "conversation": CONV, "text": "hi"}', "invalid_client_id"),
    ('{"type": "message", "conversation": CONV, "text": 5, "client_id": "n"}', "invalid_text"),
    ('{"type": "message", "conversation": CONV, "text": "a\\u0000b", "client_id": "z"}', "invalid_text"),
    ('{"type": "note", "conversation": CONV, "text": "ok", "client_id": "z\\u0000"}', "invalid_client_id"),
])
async def test_bad_frames_get_an_error_and_the_socket_stays_open(shop, ada, frame, code):
    """CONV stands for a real conversation's id (a string "CONV" for its id as text); LONG for a text just over
    the limit, HUGE for 200,000 characters (over the frame limit: refused before it is parsed)."""
    conversation = await db(ConversationFactory)(visitor=await db(VisitorFactory)(tenant=shop))
    frame = frame.replace("CONV", str(conversation.id)).replace("HUGE", "x" * 200_000).replace("LONG", "x" * 2001)
    comm, _ = await agent_socket(ada)
    await comm.send_to(text_data=frame)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code and error["detail"], error
    assert await db(Message.objects.count)() == 0
    assert await db(status_of)(conversation.id) == ("bot", None)
    await comm.send_json_to({"type": "inbox", "tab": "all"})
    assert (await frame_where(comm, type="inbox"))["conversations"][0]["id"] == conversation.id
    await comm.disconnect()


async def test_nul_characters_and_odd_searches_never_drop_the_sockets(shop, ada):
    """PostgreSQL cannot store NUL: a text with one used to fail the write and drop the socket."""
    widget, session = await widget_socket(shop)
    await widget.send_json_to({"type": "message", "text": "x\u0000y", "client_id": "w-1"})
    assert (await widget.receive_json_from(timeout=5))["code"] == "invalid_text"
    await widget.send_json_to({"type": "message", "text": "refund please", "client_id": "w-2"})
    assert (await widget.receive_json_from(timeout=5))["type"] == "ack"
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "inbox", "tab": "all", "q": "\u0000refund"})
    inbox = await frame_where(comm, type="inbox")
    assert [c["id"] for c in inbox["conversations"]] == [session["conversation"]]
    for odd in ("²", "9" * 40, str(session["conversation"])):  # digits int() refuses, beyond bigint, an id
        await comm.send_json_to({"type": "inbox", "tab": "all", "q": odd})
        found = [c["id"] for c in (await frame_where(comm, type="inbox"))["conversations"]]
        assert found == ([session["conversation"]] if odd == str(session["conversation"]) else [])
    await comm.disconnect()
    await widget.disconnect()


async def test_binary_frames_are_refused_and_the_socket_stays_open(ada):
    comm, _ = await agent_socket(ada)
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await comm.receive_json_from(timeout=5))["code"] in {"invalid_json", "invalid_frame"}
    await comm.send_json_to({"type": "inbox"})
    assert (await frame_where(comm, type="inbox"))["tab"] == "all"
    await comm.disconnect()


async def test_inbox_frame_answers_each_tab(shop, ada):
    def conversations():
        mine = ConversationFactory(visitor=VisitorFactory(tenant=shop), status=S.HUMAN, assigned_agent=ada)
        waiting = ConversationFactory(visitor=VisitorFactory(tenant=shop), status=S.WAITING,
                                      last_message_text="refund please")
        done = ConversationFactory(visitor=VisitorFactory(tenant=shop), status=S.RESOLVED)
        return mine.id, waiting.id, done.id

    mine, waiting, done = await db(conversations)()
    comm, _ = await agent_socket(ada)
    expected = {"mine": [mine], "unassigned": [waiting], "resolved": [done], "all": [waiting, mine]}
    for tab, ids in expected.items():
        await comm.send_json_to({"type": "inbox", "tab": tab})
        inbox = await frame_where(comm, type="inbox")
        assert (inbox["tab"], [c["id"] for c in inbox["conversations"]]) == (tab, ids)
    await comm.send_json_to({"type": "inbox", "tab": "all", "q": "REFUND"})
    assert [c["id"] for c in (await frame_where(comm, type="inbox"))["conversations"]] == [waiting]
    await comm.disconnect()


# --- any frame ----------------------------------------------------------------------------------

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),
                      st.text(max_size=30), st.lists(st.integers(), max_size=2))


@hsettings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=st.one_of(
    st.text(min_size=1, max_size=40),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["inbox", "open", "take_over", "hand_back", "resolve", "reassign", "message",
                                  "note", "feedback", "typing", "nope"])},
        optional={k: ANY_VALUE for k in ("conversation", "message_id", "agent", "on", "text", "client_id",
                                          "rating", "correct_reply", "correct_intent", "tab", "q", "suggestion")},
    ),
))
def test_any_frame_gets_an_answer_and_never_breaks_the_agent_socket(frame):
    """Whatever the console sends, the agent socket answers (or stays silent) and stays usable."""
    import asyncio

    async def scenario():
        tenant = await db(TenantFactory)(allowed_origins=["https://shop.example"])
        agent = await db(agent_of)(tenant)
        comm, _ = await agent_socket(agent)
        await comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))
        await drain(comm, quiet=0.2)
        await comm.send_json_to({"type": "inbox", "tab": "resolved"})
        assert (await frame_where(comm, type="inbox"))["tab"] == "resolved"
        await comm.disconnect()

    asyncio.run(scenario())


async def test_a_waiting_visitor_is_told_when_an_agent_comes_online_and_when_the_last_one_leaves(shop, ada):
    from chatbot.conversations import ownership

    widget, session = await widget_socket(shop)
    await db(ownership.conversation_hand_off)(session["conversation"], "visitor asked for a person",
                                              code="asked_for_person")
    status = await frame_where(widget, type="status")
    assert status == {"type": "status", "status": "waiting", "agents_online": False}
    comm, _ = await agent_socket(ada)
    assert await frame_where(widget, type="status") == {"type": "status", "status": "waiting", "agents_online": True}
    await comm.disconnect()
    assert await frame_where(widget, type="status") == {"type": "status", "status": "waiting", "agents_online": False}
    await widget.disconnect()


async def test_read_frame_clears_the_unread_count_for_every_console(shop, ada, grace):
    widget, session = await widget_socket(shop)
    await widget.send_json_to({"type": "message", "text": "hello?", "client_id": "r-1"})
    await frame_where(widget, type="ack")
    comm, inbox = await agent_socket(ada)
    other, _ = await agent_socket(grace)
    await comm.send_json_to({"type": "read", "conversation": session["conversation"]})
    update = await frame_where(other, type="conversation")
    assert update["conversation"]["id"] == session["conversation"] and update["conversation"]["unread"] == 0
    assert inbox["counts"] == {"mine": 0, "unassigned": 0, "all": 1}
    await comm.send_json_to({"type": "read", "conversation": 10**9})
    assert (await frame_where(comm, type="error"))["code"] == "not_found"
    for c in (comm, other, widget):
        await c.disconnect()

"""Fuzzing with hypothesis: generated widget frames, agent frames and HTTP inputs never crash a process (no
500, no 1011 close), never store a partial message, and always get a well-formed answer or error."""
import asyncio
import http.client
import json
import uuid
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db.models import Count, Max
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatbot.sockets import ratelimit

from chatbot.conversations import services
from chatbot.sockets.agent import FRAME_TYPES as AGENT_FRAME_TYPES
from chatbot.asgi import application
from chatbot.sockets.widget import FRAME_LIMITS
from chatbot.models import Conversation, Message
from tests.chatbot.sockets import WIDGET_ORIGIN, agent_socket
from tests.factories import MessageFactory, TenantFactory, agent_of

db = database_sync_to_async


def fuzz(examples: int) -> hsettings:
    return hsettings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=examples)

WIDGET_ANSWERS = {"ack", "error", "message", "resumed", "csat", "contact", "status", "typing"}
AGENT_ANSWERS = {"ack", "error", "message", "conversation", "inbox", "transcript", "typing", "suggestions",
                 "feedback"}

# Text as a hostile client sends it: any code point, lone surrogates and NUL included, sometimes long.
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
any_text = st.one_of(st.text(any_char, max_size=30), st.text(any_char, min_size=1990, max_size=2010),
                     st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "a\ud83d", "🙂", "x" * 2001]))
ids = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.sampled_from([0, 1, -1, 2**63, 2**63 - 1]))
scalars = st.one_of(st.none(), st.booleans(), ids, st.floats(allow_nan=True), any_text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(any_text, inner, max_size=3)),
                      max_leaves=8)


def frames(types: list[str], fields: list[str]) -> st.SearchStrategy:
    """Frame-shaped dicts: a known or unknown type, known fields with any values, and extra keys."""
    return st.builds(
        lambda type_, known, extra: {**extra, **known, **({"type": type_} if type_ is not None else {})},
        st.one_of(st.sampled_from(types), any_text, st.none(), ids),
        st.dictionaries(st.sampled_from(fields), values, max_size=len(fields)),
        st.dictionaries(any_text, values, max_size=2),
    )


def raw(frame) -> str:
    """The frame as a client puts it on the wire (lone surrogates as JSON escapes; NaN as JSON's NaN)."""
    return frame if isinstance(frame, str) else json.dumps(frame)


widget_frames = st.one_of(
    frames(list(FRAME_LIMITS), ["text", "client_id", "after_seq", "message_id", "rating", "email", "on"]),
    st.text(any_char, max_size=40).map(lambda s: s),  # not even JSON
    st.sampled_from(["[" * 3000, "{" * 500 + "}" * 500, '{"type": "message"' + ", " * 9000 + "}", "null", "1e999"]),
)
agent_frames = frames(list(AGENT_FRAME_TYPES), ["conversation", "message_id", "text", "client_id", "rating",
                                                "correct_reply", "correct_intent", "on", "tab", "q", "agent",
                                                "suggestion"])


@pytest.fixture
def roomy_limits(settings):
    """Limits that fuzzing from one visitor does not reach, in counters of this test's own."""
    settings.RATE_LIMIT_PREFIX = f"fuzz-{uuid.uuid4().hex[:10]}"
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "visitor_messages": [10_000, 60], "visitor_frames": [10_000, 60],
                            "visitor_resumes": [10_000, 60]}
    ratelimit.reset_memory()


def messages_are_whole() -> None:
    """No partial message: every stored text is non-empty and stripped, client ids are unique per
    conversation, and seqs run 1..last_seq without gaps."""
    for message in Message.objects.all():
        assert message.text and message.text == message.text.strip() and "\x00" not in message.text
        message.text.encode("utf-8")
    per_conversation = Message.objects.values("conversation").annotate(n=Count("id"), top=Max("seq"))
    last_seq = dict(Conversation.objects.values_list("id", "last_seq"))
    for row in per_conversation:
        assert row["n"] == row["top"] == last_seq[row["conversation"]], row


async def answers(comm: WebsocketCommunicator, quiet: float = 0.1) -> list[dict]:
    """Every frame until the socket is quiet; fails if the server closes it."""
    out = []
    while not await comm.receive_nothing(timeout=quiet):
        event = await comm.receive_output(timeout=1)
        assert event["type"] == "websocket.send", f"the server closed the socket: {event}"
        out.append(json.loads(event["text"]))
    return out


def well_formed(frame: dict, allowed: set[str]) -> None:
    assert isinstance(frame, dict) and frame.get("type") in allowed, frame
    if frame["type"] == "error":
        assert isinstance(frame["code"], str) and frame["code"] and isinstance(frame["detail"], str), frame


# --- the widget socket ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@fuzz(100)
@given(batch=st.lists(widget_frames, min_size=1, max_size=4))
def test_widget_frames_never_break_the_socket_or_store_a_partial_message(roomy_limits, batch):
    async def scenario():
        tenant = await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])
        opened = await db(services.visitor_session_open)(tenant, None) if len(batch) % 2 else None
        if opened:  # half the time a visitor with a conversation and a bot reply to rate, else a new one
            await db(MessageFactory)(conversation=opened.conversation, seq=1, sender="bot")
            await db(Conversation.objects.filter(pk=opened.conversation.id).update)(last_seq=1)
        path = f"/ws/widget/?key={tenant.public_key}" + (f"&visitor={opened.visitor.token}" if opened else "")
        comm = WebsocketCommunicator(application, path, headers=[(b"origin", WIDGET_ORIGIN.encode())])
        assert (await comm.connect(timeout=5))[0]
        assert (await comm.receive_json_from(timeout=5))["type"] == "session"
        for frame in batch:
            await comm.send_to(text_data=raw(frame) or " ")
            replies = await answers(comm)
            for reply in replies:
                well_formed(reply, WIDGET_ANSWERS)
            if isinstance(frame, dict) and frame.get("type") == "message":
                # A message frame gets exactly one ack or one error, which names it when it could be read.
                verdicts = [r for r in replies if r["type"] in ("ack", "error")]
                assert len(verdicts) == 1, replies
        await comm.send_json_to({"type": "message", "text": "probe", "client_id": f"probe-{uuid.uuid4()}"})
        assert (await comm.receive_json_from(timeout=5))["type"] == "ack"
        await comm.disconnect()

    asyncio.run(scenario())
    messages_are_whole()


# --- the agent socket -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@fuzz(60)
@given(batch=st.lists(agent_frames, min_size=1, max_size=4), aim=st.sampled_from(["own", "other", "random"]))
def test_agent_frames_never_break_the_socket_reach_another_store_or_store_a_partial_message(batch, aim):
    async def scenario():
        alpha, bravo = await db(TenantFactory)(), await db(TenantFactory)()
        mine = await db(services.visitor_session_open)(alpha, None)
        theirs = await db(services.visitor_session_open)(bravo, None)
        asked, _ = await db(services.message_receive)(theirs.conversation.id, "bravo question", "b-1")
        agent = await db(agent_of)(alpha)
        before = await db(lambda: (list(Message.objects.filter(conversation__tenant=bravo).values()),
                                   list(Conversation.objects.filter(tenant=bravo).values())))()
        target = {"own": mine.conversation.id, "other": theirs.conversation.id, "random": None}[aim]
        comm, _ = await agent_socket(agent)
        for frame in batch:
            if target is not None and isinstance(frame, dict):
                frame = {**frame, "conversation": target, "message_id": asked.id if aim == "other" else
                         frame.get("message_id")}
            await comm.send_to(text_data=raw(frame) or " ")
            for reply in await answers(comm):
                well_formed(reply, AGENT_ANSWERS)
                assert "bravo question" not in json.dumps(reply)
        await comm.send_json_to({"type": "inbox"})
        for reply in await answers(comm, quiet=0.2):
            well_formed(reply, AGENT_ANSWERS)
        after = await db(lambda: (list(Message.objects.filter(conversation__tenant=bravo).values()),
                                  list(Conversation.objects.filter(tenant=bravo).values())))()
        assert after == before
        await comm.disconnect()

    asyncio.run(scenario())
    messages_are_whole()


# --- HTTP -------------------------------------------------------------------------------------------


def http_routes() -> list[str]:
    """Every URL of the project as a concrete path (ids filled with 1), the admin's own pages aside."""
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern).startswith("admin/"):
                    yield "/admin/"
                    continue
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield "/" + prefix + str(p.pattern)

    import re

    return sorted({re.sub(r"<(?:(\w+):)?\w+>", lambda m: "demo" if m.group(1) == "slug" else "1", r)
                   for r in walk(get_resolver().url_patterns)})


query_strings = st.one_of(
    st.text(any_char, max_size=60).map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="=&")),
    st.dictionaries(st.sampled_from(["tenant", "store", "q", "tab", "next", "format", "rows", "page", "key", "id"]),
                    any_text, max_size=3).map(lambda d: "&".join(
                        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in d.items())),
    st.binary(max_size=60).map(lambda b: quote(b, safe="=&%")),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(["tenant", "shortcut", "text", "username", "password", "next", "rating",
                                     "label", "intent", "csrfmiddlewaretoken"]), any_text, max_size=4).map(
        lambda d: "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in d.items()).encode()),
    st.builds(lambda v: json.dumps(v).encode(), values),
)


@pytest.fixture
def http_world(db):
    store = TenantFactory(slug="demo", allowed_origins=[WIDGET_ORIGIN])
    manager = agent_of(store, role="manager")
    return {"manager": manager, "routes": http_routes()}


@pytest.mark.django_db
@fuzz(400)
@given(route_index=st.integers(min_value=0, max_value=10_000), method=st.sampled_from(["GET", "POST"]),
       query=query_strings, body=bodies, logged_in=st.booleans(),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain",
                                     "multipart/form-data; boundary=xyz"]))
def test_http_inputs_never_crash_a_view(http_world, route_index, method, query, body, logged_in, content_type):
    routes = http_world["routes"]
    url = routes[route_index % len(routes)] + ("?" + query if query else "")
    client = Client(raise_request_exception=False)
    if logged_in:
        client.force_login(http_world["manager"])
    if method == "GET":
        response = client.get(url)
    else:
        response = client.generic("POST", url, body, content_type=content_type)
    assert response.status_code < 500, (url, response.status_code)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("target", [
    "/healthz?%00", "/demo/%00/", "/console/?q=%ED%A0%80", "/accounts/login/?next=%00", "/%ff%fe",
    "/demo/" + "a" * 3000,
    "/console/canned/99999999999999999999999999/", "/static/chatbot/widget.js?%00", "/ws/widget/?key=%00",
])
def test_the_real_server_answers_odd_requests_without_a_500(live_server_url, target):
    host, port = live_server_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", target, skip_accept_encoding=True)
    conn.endheaders()
    assert conn.getresponse().status < 500
    conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/accounts/login/", body=b"\xff\xfe\x00" * 1000,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status < 500
    conn.close()

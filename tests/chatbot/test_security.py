"""Security: input hygiene on both sockets, nothing stored by silent connects, the console's
Content-Security-Policy and CSRF, and no message text or keys in logs above DEBUG."""
import asyncio
import json
import logging
import re
import sys
import time

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatbot.asgi import application
from chatbot.models import Conversation, Message, Visitor
from tests.chatbot.sockets import WIDGET_ORIGIN, agent_socket
from tests.factories import KnowledgeEntryFactory, TenantFactory, agent_of
from tests.processes import Process, free_port

db = database_sync_to_async


@pytest.fixture
async def shop():
    return await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN])


async def raw_widget(query: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/ws/widget/?{query}", headers=[(b"origin", WIDGET_ORIGIN.encode())])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def new_visitor(tenant) -> tuple[WebsocketCommunicator, dict]:
    comm = await raw_widget(f"key={tenant.public_key}")
    session = await comm.receive_json_from(timeout=5)
    assert session["type"] == "session", session
    return comm, session


async def closed_with(comm: WebsocketCommunicator) -> int:
    """The close code the server ends the socket with (after any frames)."""
    while True:
        out = await comm.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            return out.get("code")


async def stored_rows() -> tuple[int, int, int]:
    return (await db(Visitor.objects.count)(), await db(Conversation.objects.count)(),
            await db(Message.objects.count)())


# --- visitors and conversations start at the first message -----------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_200_silent_connects_store_no_visitor_and_no_conversation(shop):
    tokens = set()
    for _ in range(200):
        comm, session = await new_visitor(shop)
        assert session["conversation"] is None and session["messages"] == []
        tokens.add(session["visitor"])
        await comm.disconnect()
    assert len(tokens) == 200
    assert await stored_rows() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
async def test_the_first_message_creates_the_visitor_under_her_token_and_a_reconnect_finds_it(shop):
    comm, session = await new_visitor(shop)
    await comm.send_json_to({"type": "resume", "after_seq": 0})  # nothing to resume yet, nothing stored
    assert (await comm.receive_json_from(timeout=5)) == {"type": "resumed", "after_seq": 0, "last_seq": 0,
                                                         "more": False}
    await comm.send_json_to({"type": "typing", "on": True})
    await comm.send_json_to({"type": "message", "text": "   ", "client_id": "blank"})  # refused: creates nothing
    assert (await comm.receive_json_from(timeout=5))["code"] == "empty_text"
    assert await stored_rows() == (0, 0, 0)
    await comm.send_json_to({"type": "message", "text": "Where is order 1234?", "client_id": "c1"})
    ack = await comm.receive_json_from(timeout=5)
    assert ack["type"] == "ack" and isinstance(ack["conversation"], int)
    visitor = await db(Visitor.objects.get)(tenant=shop)
    assert visitor.token == session["visitor"]
    await comm.disconnect()

    again = await raw_widget(f"key={shop.public_key}&visitor={session['visitor']}")
    resumed = await again.receive_json_from(timeout=5)
    assert resumed["visitor"] == session["visitor"] and resumed["conversation"] == ack["conversation"]
    assert [m["text"] for m in resumed["messages"]] == ["Where is order 1234?"]
    await again.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_first_message_in_one_tab_starts_the_conversation_in_the_others(shop):
    first, session = await new_visitor(shop)
    second = await raw_widget(f"key={shop.public_key}&visitor={session['visitor']}")
    assert (await second.receive_json_from(timeout=5))["conversation"] is None
    await first.send_json_to({"type": "message", "text": "hello from tab one", "client_id": "t1"})
    ack = await first.receive_json_from(timeout=5)
    caught_up = await second.receive_json_from(timeout=5)
    assert caught_up == {"type": "message", "message": ack["message"]}
    await second.send_json_to({"type": "message", "text": "and from tab two", "client_id": "t2"})
    assert (await second.receive_json_from(timeout=5))["conversation"] == ack["conversation"]
    assert await stored_rows() == (1, 1, 2)
    await first.disconnect()
    await second.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_token_this_server_did_not_sign_is_replaced(shop):
    comm = await raw_widget(f"key={shop.public_key}&visitor=v_madeup123")
    session = await comm.receive_json_from(timeout=5)
    assert session["visitor"] != "v_madeup123" and session["conversation"] is None
    await comm.send_json_to({"type": "message", "text": "hi", "client_id": "c1"})
    await comm.receive_json_from(timeout=5)
    assert not await db(Visitor.objects.filter(token="v_madeup123").exists)()
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_two_first_messages_at_once_make_one_visitor_and_one_conversation(shop):
    first, session = await new_visitor(shop)
    second = await raw_widget(f"key={shop.public_key}&visitor={session['visitor']}")
    assert (await second.receive_json_from(timeout=5))["visitor"] == session["visitor"]
    await asyncio.gather(first.send_json_to({"type": "message", "text": "one", "client_id": "a"}),
                         second.send_json_to({"type": "message", "text": "two", "client_id": "b"}))
    acks = [await first.receive_json_from(timeout=5), await second.receive_json_from(timeout=5)]
    assert [a["type"] for a in acks] == ["ack", "ack"]
    assert acks[0]["conversation"] == acks[1]["conversation"]
    assert await stored_rows() == (1, 1, 2)
    await first.disconnect()
    await second.disconnect()


# --- input hygiene: clean error frames, never a 1011 close -----------------------------------------


POISON = [
    ({"type": "message", "text": "nul \u0000 inside", "client_id": "c-nul"}, "invalid_text", "c-nul"),
    ('{"type": "message", "text": "lone \\ud800 surrogate", "client_id": "c-sur"}', "invalid_text", "c-sur"),
    ('{"type": "message", "text": "\\udfff", "client_id": "c-sur2"}', "invalid_text", "c-sur2"),
    ({"type": "message", "text": "hi", "client_id": "nul\u0000id"}, "invalid_client_id", "nul\u0000id"),
    ('{"type": "message", "text": "hi", "client_id": "\\ud800"}', "invalid_client_id", None),
    ('{"type": "contact", "email": "\\ud800@example.com"}', "invalid_frame", None),
    ('{"type": "\\ud800"}', "invalid_frame", None),
    ('{"\\ud800": 1, "type": "resume"}', "invalid_frame", None),
    ("[" * 1000 + "]" * 1000, "invalid_json", None),
    ('{"type": "message", "text": "deep", "client_id": "d", "x": ' + "[" * 5000 + "]" * 5000 + "}", "invalid_json",
     None),
    ('{"type": "message", "text": "' + "x" * 20000 + '", "client_id": "big"}', "frame_too_large", None),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame, code, client_id", POISON)
async def test_poisoned_widget_frames_get_a_clean_error_and_the_socket_stays_usable(shop, frame, code, client_id):
    comm, _ = await new_visitor(shop)
    await comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code and error["detail"], error
    assert error.get("client_id") == client_id  # the widget drops exactly that message from its outbox
    assert (await stored_rows())[2] == 0
    await comm.send_json_to({"type": "message", "text": "still here", "client_id": "ok"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "ack"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_binary_frames_are_refused_and_too_large_ones_too(shop):
    comm, _ = await new_visitor(shop)
    await comm.send_to(bytes_data=b'{"type": "resume"}')
    assert (await comm.receive_json_from(timeout=5))["code"] == "invalid_frame"
    await comm.send_to(bytes_data=b"x" * 100_000)
    assert (await comm.receive_json_from(timeout=5))["code"] == "frame_too_large"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("query", [
    "key=%00", "key=%ff%fe", "key=" + "k" * 500, "key=%ud800", "key=pk_%00abc", "key[]=x", "", "key",
    "key=pk_abc&key=pk_def", "key=%F0%9F%98%80",
])
async def test_a_garbage_key_closes_with_4401_not_1011(shop, query):
    comm = await raw_widget(query)
    error = await comm.receive_json_from(timeout=5)
    assert error["code"] == "invalid_key"
    assert await closed_with(comm) == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("visitor", ["%00", "v_%00abc", "%ff%fe", "x" * 500, "%ED%A0%80", "'; DROP TABLE x; --",
                                     "v_abc:def:ghi", "%0A%0D"])
async def test_a_garbage_visitor_token_gets_a_new_visitor(shop, visitor):
    comm = await raw_widget(f"key={shop.public_key}&visitor={visitor}")
    session = await comm.receive_json_from(timeout=5)
    assert session["type"] == "session" and session["visitor"].startswith("v_") and session["conversation"] is None
    await comm.send_json_to({"type": "message", "text": "hi", "client_id": "c1"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "ack"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame, code", [
    ('{"type": "inbox", "q": "\\ud800"}', "invalid_frame"),
    ('{"type": "message", "conversation": 1, "text": "\\ud800", "client_id": "a-1"}', "invalid_text"),
    ('{"type": "note", "conversation": 1, "text": "ok", "client_id": "\\udc00"}', "invalid_client_id"),
    ('{"type": "feedback", "message_id": 1, "rating": "down", "correct_intent": "\\ud800"}', "invalid_frame"),
    ("[" * 1000 + "]" * 1000, "invalid_json"),
    ('{"type": "inbox", "q": "' + "q" * 20000 + '"}', "frame_too_large"),
    ('{"type": "open", "conversation": 99999999999999999999999999}', "not_found"),
    ('{"type": "open", "conversation": -1}', "not_found"),
    ('{"type": "inbox", "q": "\\u0000"}', None),  # NUL is stripped from searches: an inbox answers
])
async def test_poisoned_agent_frames_get_a_clean_error(shop, frame, code):
    agent = await db(agent_of)(shop)
    comm, _ = await agent_socket(agent)
    await comm.send_to(text_data=frame)
    answer = await comm.receive_json_from(timeout=5)
    if code is None:
        assert answer["type"] == "inbox"
    else:
        assert answer["type"] == "error" and answer["code"] == code, answer
    await comm.send_json_to({"type": "inbox"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "inbox"
    await comm.disconnect()


# --- HTTP: sizes, CSRF, security headers, the console's Content-Security-Policy ---------------------


@pytest.mark.django_db
def test_a_request_body_over_the_limit_is_refused_with_400(settings):
    client = Client()
    big = {"username": "x", "password": "y" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}
    assert client.post("/accounts/login/", big).status_code == 400


@pytest.mark.django_db
def test_every_console_form_needs_its_csrf_token(shop):
    manager = agent_of(shop, role="manager")
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    for url in ("/console/canned/", "/console/canned/1/", "/console/canned/1/delete/", "/accounts/logout/"):
        assert client.post(url, {"tenant": shop.slug, "shortcut": "x", "text": "y"}).status_code == 403, url
    page = client.get("/console/canned/").content.decode()
    forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", page, re.S | re.I)
    assert forms and all("csrfmiddlewaretoken" in form for form in forms)
    login = Client(enforce_csrf_checks=True)
    assert login.post("/accounts/login/", {"username": "a", "password": "b"}).status_code == 403
    assert "csrfmiddlewaretoken" in login.get("/accounts/login/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/console/", "/console/canned/", "/accounts/login/"])
def test_console_pages_carry_a_strict_content_security_policy(shop, url):
    client = Client()
    client.force_login(agent_of(shop))
    response = client.get(url, follow=True)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self' ws://testserver wss://testserver" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    # Nothing inline for the policy to block: every script is a file (the console's data is JSON, not code).
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.content.decode(), re.S)
    for attributes, body in scripts:
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    assert not re.search(r"\son[a-z]+=", response.content.decode())


@pytest.mark.django_db
def test_the_demo_store_and_health_check_have_no_console_policy(shop):
    assert "Content-Security-Policy" not in Client().get("/healthz")


# --- logs: no message text, keys or tokens above DEBUG -----------------------------------------------


SECRET_TEXT = "my-card-4111-1111-1111-1111-and-home-address"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_conversation_logs_no_text_key_or_token_at_info(process_env, tmp_path, caplog):
    """A real daphne (access log on) and worker at INFO, a conversation with an agent; then their logs and
    this process's are searched for the text, the widget key, the visitor token and the session id."""
    from chatbot.conversations import ownership, services

    shop = TenantFactory(allowed_origins=[WIDGET_ORIGIN])
    KnowledgeEntryFactory(tenant=shop, question="How long does shipping take?",
                          answer="Standard shipping takes 3 to 5 business days.")
    agent = agent_of(shop)
    env = dict(process_env, LOG_LEVEL="INFO", CELERY_QUEUE=f"{process_env['CELERY_QUEUE']}-logs")
    port = free_port()
    web = Process("web", [sys.executable, "-m", "daphne", "-v", "1", "-b", "127.0.0.1", "-p", str(port),
                          "chatbot.asgi:application"], env, tmp_path).launch()
    worker = Process("worker", [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-P", "solo", "-Q",
                                env["CELERY_QUEUE"], "-l", "info", "--without-gossip", "--without-mingle"], env,
                     tmp_path).launch()

    async def chat() -> dict:
        deadline = time.monotonic() + 60
        while True:
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/widget/?key={shop.public_key}",
                                              origin=WIDGET_ORIGIN)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        async with ws:
            session = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "message", "text": f"how long does shipping take? {SECRET_TEXT}",
                                      "client_id": "log-1"}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if frame["type"] == "message" and frame["message"]["sender"] == "bot":
                    return {"session": session, "reply": frame}

    try:
        with caplog.at_level(logging.INFO):
            result = asyncio.run(chat())
            conversation = Message.objects.get(client_id="log-1").conversation
            ownership.conversation_take_over(conversation.id, agent=agent)
            services.agent_message_send(agent, conversation.id, f"agent says {SECRET_TEXT}", "log-2")
            time.sleep(1)
    finally:
        worker.stop()
        web.stop()
    logs = web.text() + worker.text() + caplog.text
    assert "WSCONNECT" in logs and "ready" in logs  # the logs were written at INFO
    token = result["session"]["visitor"]
    for secret in (SECRET_TEXT, shop.public_key, token, token.split(".")[-1]):
        assert secret not in logs, f"{secret!r} appears in the logs"


# --- in a browser: the console under its policy; the widget's first message and signed identity ------


@pytest.fixture
def chromium(process_env, monkeypatch):
    """Headless Chromium (as tests/browser's); the servers' environment was captured before the async-safety
    check is turned off here for the test's own ORM calls under Playwright's event loop."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.browser.test_widget import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.mark.live
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_console_works_under_its_policy_and_the_widget_keeps_its_first_message(live_server_url, chromium):
    """The console logs in, goes live and takes a visitor's first message with no CSP violation; the widget
    (whose session said conversation null) keeps that message when the ack gives the conversation's id."""
    from playwright.sync_api import expect

    from tests.browser import test_console, test_widget

    shop = TenantFactory(slug="demo", name="Northwind Outfitters", allowed_origins=[live_server_url])
    test_console.agent(shop, "alice", "Alice Agent")
    violations: list[str] = []
    console = test_console.new_page(chromium)
    console.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    test_console.log_in(console, live_server_url, "alice")  # waits for the agent socket: online
    response = console.goto(f"{live_server_url}/console/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(console.locator("#conn")).to_have_attribute("data-state", "online", timeout=15_000)

    visitor = test_console.new_page(chromium, width=1280, height=800)
    test_widget.open_chat(visitor, f"{live_server_url}/demo/")
    assert Visitor.objects.count() == 0  # opening the chat stored nothing
    test_widget.send(visitor, "Hello, is anyone there?")
    expect(test_widget.acked(visitor, "Hello, is anyone there?")).to_have_count(1)
    visitor.wait_for_timeout(300)
    expect(test_widget.acked(visitor, "Hello, is anyone there?")).to_have_count(1)  # not wiped by the new id
    expect(console.locator(".conv")).to_have_count(1, timeout=15_000)  # live in the inbox
    visitor.reload()  # the stored token finds her conversation
    visitor.locator(".nwcb-bubble").click()
    expect(test_widget.acked(visitor, "Hello, is anyone there?")).to_have_count(1)
    assert Visitor.objects.count() == 1 and Conversation.objects.count() == 1
    assert violations == [] and console.script_errors == [] and visitor.script_errors == []
    for page in (console, visitor):
        page.context.close()


@pytest.mark.live
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_widget_sends_the_signed_identity_of_its_script_tag(live_server_url, chromium):
    from playwright.sync_api import expect

    from chatbot.conversations import identity
    from tests.browser import test_widget

    store = test_widget.StorePage()
    try:
        shop = TenantFactory(allowed_origins=[store.origin], identity_secret="s" * 40, require_identity=True)
        signature = identity.identity_hash("s" * 40, "cust-42")
        for user_hash, refused in ((signature, False), ("0" * 64, True)):
            url = store.embedding(shop.public_key, live_server_url)
            store.html = store.html.replace(" async>", f' data-user-id="cust-42" data-user-hash="{user_hash}" async>')
            page = chromium.new_context().new_page()
            errors = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(url)
            page.locator(".nwcb-bubble").click()
            if refused:
                expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "unavailable")
                assert any("not correctly signed" in e for e in errors), errors
            else:
                expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online", timeout=15_000)
                test_widget.send(page, "order 1001?")
                expect(test_widget.acked(page, "order 1001?")).to_have_count(1)
                assert Visitor.objects.get(tenant=shop).external_id == "cust-42"
            page.context.close()
    finally:
        store.server.shutdown()
        store.server.server_close()

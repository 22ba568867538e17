"""widget.js in headless Chromium against the real ASGI server, worker, PostgreSQL and Redis.

The widget lives in an open shadow root; Playwright's CSS locators pierce it.
Screenshots of the open widget go to test-artifacts/ (gitignored).
"""
import json
from urllib.parse import quote
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chatbot.conversations import ownership, presence, services
from chatbot.models import Conversation, Feedback, Message, Visitor
from tests.conftest import free_port, needs_services
from tests.factories import KnowledgeEntryFactory, TenantFactory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHIPPING = "Standard shipping takes 3 to 5 business days."
GREETING = "Hi! I'm the Northwind assistant. Ask me about orders, shipping, returns or our gear."
ANSWER_TIMEOUT_MS = 120_000  # the worker loads its models on the first message

# Records every socket the page opens and every frame it sends, before any page script runs.
SOCKET_SPY = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__sent = [];
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__sockets.push(ws);
    const send = ws.send.bind(ws);
    ws.send = (data) => { window.__sent.push(data); return send(data); };
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
"""


@pytest.fixture(scope="module")
def browser(process_env):
    """Headless Chromium, started after the server's environment was captured.

    Playwright's sync API runs an event loop in this thread, so Django's async-safety
    check must be off for the test's own ORM calls; process_env was copied before, so
    the server and worker processes keep the check.
    """
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                headless=True,
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class StorePage:
    """Another shop's site on an origin of its own (localhost, another port) that embeds the widget.

    A real loopback server rather than page.route: Chromium refuses loads from a
    page it counts as public into loopback (Private Network Access).
    """

    def __init__(self) -> None:
        self.html = ""
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = store.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        port = free_port()
        self.origin = f"http://localhost:{port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def embedding(self, key: str, live_server_url: str) -> str:
        """Serve a page with the widget tag for `key` and return its URL."""
        self.html = ("<!doctype html><title>Another shop</title><h1>Another shop</h1>"
                     f'<script src="{live_server_url}/static/chatbot/widget.js" data-key="{key}" async></script>')
        return f"{self.origin}/shop"


@pytest.fixture(scope="module")
def other_store():
    store = StorePage()
    yield store
    store.server.shutdown()
    store.server.server_close()


@pytest.fixture
def demo_store(live_server_url, other_store):
    """The demo tenant the /demo/ page shows, allowed on the test server's origin and on other_store's."""
    tenant = TenantFactory(
        slug="demo", name="Northwind Outfitters", greeting=GREETING,
        allowed_origins=[live_server_url, other_store.origin],
    )
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?", answer=SHIPPING)
    KnowledgeEntryFactory(tenant=tenant, question="What is your return policy?",
                          answer="You can return unused items within 30 days.")
    KnowledgeEntryFactory(tenant=tenant, question="Which payment methods do you accept?",
                          answer="We accept Visa, Mastercard and PayPal.")
    return tenant


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(SOCKET_SPY)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.console_errors, page.script_errors = [], []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    page.on("dialog", lambda dialog: pytest.fail(f"page opened a dialog: {dialog.message}"))
    return page


def open_chat(page, url: str) -> None:
    page.goto(url)
    page.locator(".nwcb-bubble").click()
    expect(page.locator(".nwcb-panel")).to_be_visible()
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online", timeout=15_000)


def send(page, text: str) -> None:
    page.locator(".nwcb-input").fill(text)
    page.locator(".nwcb-input").press("Enter")


def acked(page, text: str):
    """The visitor bubble of `text` once the server acked it (it then carries the stored id)."""
    return page.locator(".nwcb-msg--visitor[data-id]", has=page.locator(".nwcb-text", has_text=text))


def sent_frames(page, frame_type: str) -> list[dict]:
    return [f for f in map(json.loads, page.evaluate("window.__sent")) if f["type"] == frame_type]


def wait_until(condition, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_visitor_chats_with_the_bot_and_history_survives_a_reload(page, demo_store, live_server_url, celery_worker):
    open_chat(page, f"{live_server_url}/demo/")
    assert page.locator('script[src*="widget.js"]').count() == 1
    expect(page.locator(".nwcb-greeting .nwcb-text")).to_have_text(GREETING)
    expect(page.locator(".nwcb-input")).to_be_focused()

    send(page, "how many days until my parcel ships to me?")
    expect(page.locator(".nwcb-input")).to_have_value("")
    expect(acked(page, "how many days until my parcel ships to me?")).to_have_count(1)
    bot = page.locator(".nwcb-msg--bot[data-id]")
    expect(bot).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    expect(bot.locator(".nwcb-text")).to_have_text(SHIPPING)
    expect(page.locator(".nwcb-typing")).to_be_hidden()
    screenshot(page, "widget-desktop.png")

    stored = Message.objects.get(sender="visitor", conversation__tenant=demo_store)
    assert len(stored.client_id) == 36  # a UUID from crypto.randomUUID
    token = page.evaluate(f"localStorage.getItem('nwcb:visitor:{demo_store.public_key}')")
    assert token == stored.conversation.visitor.token

    bot.locator(".nwcb-rate[data-rating=up]").click()
    expect(bot.locator(".nwcb-rate[data-rating=up]")).to_have_attribute("aria-pressed", "true")
    wait_until(lambda: Feedback.objects.filter(message__sender="bot", rating="up").exists(), what="feedback row")

    page.reload()
    page.locator(".nwcb-bubble").click()
    expect(page.locator(".nwcb-msg[data-id]")).to_have_count(2)
    expect(page.locator(".nwcb-msg[data-id] .nwcb-text")).to_have_text(
        ["how many days until my parcel ships to me?", SHIPPING]
    )
    expect(page.locator(".nwcb-greeting")).to_have_count(1)
    assert Visitor.objects.filter(tenant=demo_store).count() == 1
    assert f"visitor={quote(token, safe='')}" in page.evaluate("window.__sockets[0].url")
    assert page.script_errors == []
    assert page.console_errors == []


def test_markup_in_a_message_is_shown_as_literal_text(page, demo_store, live_server_url):
    markup = "<img src=x onerror=alert(1)> <b>bold?</b>"
    open_chat(page, f"{live_server_url}/demo/")
    send(page, markup)
    message = acked(page, "onerror")
    expect(message).to_have_count(1)
    expect(message.locator(".nwcb-text")).to_have_text(markup)
    assert page.locator(".nwcb-messages img, .nwcb-messages b").count() == 0
    assert Message.objects.get(sender="visitor").text == markup


def test_panel_fills_a_phone_screen_and_works_by_keyboard(browser, demo_store, live_server_url):
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_chat(page, f"{live_server_url}/demo/")
        box = page.locator(".nwcb-panel").bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
        expect(page.locator(".nwcb-bubble")).to_be_hidden()
        expect(page.locator(".nwcb-input")).to_be_in_viewport()
        expect(page.locator(".nwcb-send")).to_be_in_viewport()
        send(page, "Do you ship to Canada?")
        expect(acked(page, "Do you ship to Canada?")).to_have_count(1)
        screenshot(page, "widget-phone.png")

        page.locator(".nwcb-send").focus()
        page.keyboard.press("Tab")  # full screen, focus stays in the panel
        expect(page.locator(".nwcb-close")).to_be_focused()
        page.keyboard.press("Shift+Tab")
        expect(page.locator(".nwcb-send")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator(".nwcb-panel")).to_be_hidden()
        expect(page.locator(".nwcb-bubble")).to_be_focused()
        expect(page.locator(".nwcb-bubble")).to_have_attribute("aria-expanded", "false")
        page.keyboard.press("Enter")
        expect(page.locator(".nwcb-panel")).to_be_visible()
        expect(page.locator(".nwcb-input")).to_be_focused()
    finally:
        context.close()


def test_message_written_offline_is_sent_once_on_reconnect(page, context, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    send(page, "first, while online")
    expect(acked(page, "first, while online")).to_have_count(1)

    context.set_offline(True)
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "offline")
    expect(page.locator(".nwcb-notice")).to_contain_text("offline")
    send(page, "written while offline")
    pending = page.locator(".nwcb-msg--pending", has_text="written while offline")
    expect(pending).to_have_count(1)
    page.wait_for_timeout(1500)  # a reconnect attempt or two fail meanwhile
    screenshot(page, "widget-offline.png")
    assert acked(page, "written while offline").count() == 0

    context.set_offline(False)
    expect(acked(page, "written while offline")).to_have_count(1, timeout=15_000)
    expect(page.locator(".nwcb-msg--pending")).to_have_count(0)
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online")
    expect(page.locator(".nwcb-notice")).to_be_hidden()
    assert Message.objects.filter(text="written while offline").count() == 1
    expect(page.locator(".nwcb-text", has_text="written while offline")).to_have_count(1)
    resumes = sent_frames(page, "resume")
    assert resumes and resumes[-1]["after_seq"] >= 1


def test_dropped_socket_reconnects_resumes_and_shows_each_message_once(page, demo_store, live_server_url,
                                                                       celery_worker):
    open_chat(page, f"{live_server_url}/demo/")
    send(page, "what's your return policy")
    expect(acked(page, "what's your return policy")).to_have_count(1)
    # Drop the socket before the answer arrives; it is stored and comes back on reconnect.
    page.evaluate("window.__sockets.at(-1).close()")
    bot = page.locator(".nwcb-msg--bot[data-id]")
    expect(bot).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    expect(bot.locator(".nwcb-text")).to_have_text("You can return unused items within 30 days.")
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online")
    assert page.evaluate("window.__sockets.length") >= 2
    # The session history and the resume both carry the reply: shown once, in seq order.
    page.wait_for_timeout(1000)
    expect(page.locator(".nwcb-msg[data-id]")).to_have_count(2)
    seqs = page.locator(".nwcb-msg[data-id]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == [1, 2]
    assert sent_frames(page, "resume")[-1]["after_seq"] in (1, 2)


def test_widget_on_a_store_origin_talks_to_its_own_server(page, demo_store, live_server_url, other_store):
    page.goto(other_store.embedding(demo_store.public_key, live_server_url))
    page.locator(".nwcb-bubble").click()
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online", timeout=15_000)
    url = page.evaluate("window.__sockets[0].url")
    assert url.startswith(live_server_url.replace("http://", "ws://") + "/ws/widget/?key=")
    send(page, "hello from another origin")
    expect(acked(page, "hello from another origin")).to_have_count(1)


@pytest.mark.parametrize("case", ["unknown key", "origin not allowed"])
def test_refused_widget_stops_reconnecting_and_says_so(page, demo_store, live_server_url, other_store, case):
    if case == "origin not allowed":
        demo_store.allowed_origins = [live_server_url]
        demo_store.save()
    key = "no-such-key" if case == "unknown key" else demo_store.public_key
    page.goto(other_store.embedding(key, live_server_url))
    page.locator(".nwcb-bubble").click()
    expect(page.locator(".nwcb-notice")).to_contain_text("isn't available", timeout=15_000)
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "unavailable")
    expect(page.locator(".nwcb-input")).to_be_disabled()
    page.wait_for_timeout(3000)
    assert page.evaluate("window.__sockets.length") == 1
    if case == "unknown key":
        screenshot(page, "widget-refused.png")
    wanted = "allowed origins" if case == "origin not allowed" else "unknown or inactive"
    assert any(wanted in text for text in page.console_errors), page.console_errors


def test_too_long_message_is_refused_politely_before_sending(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    # Typing stops at the textarea's maxlength; a script can still put more there.
    page.locator(".nwcb-input").evaluate("el => { el.value = 'x'.repeat(2001); }")
    page.locator(".nwcb-input").press("Enter")
    expect(page.locator(".nwcb-error")).to_contain_text("too long")
    expect(page.locator(".nwcb-input")).to_have_value("x" * 2001)  # kept, so it can be shortened
    assert sent_frames(page, "message") == []


def test_rate_limited_messages_wait_and_are_each_sent_once(page, demo_store, live_server_url):
    # The limit counts in fixed windows: a burst that straddles a window's end may pass up to twice the
    # limit, so the burst is longer than two windows' worth to be refused wherever the boundary falls.
    demo_store.rate_limits = {"visitor_messages": [4, 5]}
    demo_store.save()
    open_chat(page, f"{live_server_url}/demo/")
    texts = [f"quick message {n}" for n in range(12)]
    for text in texts:
        send(page, text)
    expect(page.locator(".nwcb-error")).to_contain_text("a little fast")
    expect(page.locator(".nwcb-msg--pending")).not_to_have_count(0)
    expect(page.locator(".nwcb-msg--visitor[data-id]")).to_have_count(len(texts), timeout=30_000)
    expect(page.locator(".nwcb-msg--pending, .nwcb-msg--failed")).to_have_count(0)
    stored = list(Message.objects.filter(sender="visitor").order_by("seq").values_list("text", flat=True))
    assert stored == texts
    shown = page.locator(".nwcb-msg--visitor .nwcb-text").all_inner_texts()
    assert shown == texts


def test_without_a_greeting_the_panel_shows_a_hint(page, demo_store, live_server_url):
    demo_store.greeting = ""
    demo_store.save()
    open_chat(page, f"{live_server_url}/demo/")
    expect(page.locator(".nwcb-greeting")).to_have_count(0)
    expect(page.locator(".nwcb-empty")).to_be_visible()
    send(page, "hello")
    expect(acked(page, "hello")).to_have_count(1)
    expect(page.locator(".nwcb-empty")).to_be_hidden()


def test_second_tab_catches_up_on_messages_sent_in_the_first(page, context, demo_store, live_server_url,
                                                            celery_worker):
    open_chat(page, f"{live_server_url}/demo/")
    other = context.new_page()  # same visitor: the token is in the shared localStorage
    open_chat(other, f"{live_server_url}/demo/")
    send(page, "what's your return policy")
    expect(acked(page, "what's your return policy")).to_have_count(1)
    # The other tab gets the bot's reply live and fetches the visitor message it missed.
    expect(other.locator(".nwcb-msg[data-id] .nwcb-text")).to_have_text(
        ["what's your return policy", "You can return unused items within 30 days."], timeout=ANSWER_TIMEOUT_MS
    )
    assert Visitor.objects.filter(tenant=demo_store).count() == 1


# --- who answers: status line, agent names, e-mail form, CSAT, typing, small screens -------------


def agent_named(tenant, username: str = "alice", name: str = "Alice Smith", online: bool = True):
    """A member of the store's team; with `online`, her console counts as open."""
    membership, _ = services.agent_add(tenant, username, password="pw-12345", name=name)
    if online:
        presence.presence_join(membership.user, f"console-{username}")
    return membership.user


def off_loop(service, *args, **kwargs):
    """Call a service from a thread of its own: it publishes with async_to_sync, which refuses the
    test's thread, where Playwright's sync API runs an event loop."""
    from django.db import connection

    def call():
        try:
            return service(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=30)


def conversation_of(page, tenant) -> int:
    """The id of the visitor's open conversation (the widget connects with her stored token)."""
    token = page.evaluate(f"localStorage.getItem('nwcb:visitor:{tenant.public_key}')")
    return Conversation.objects.exclude(status="resolved").get(visitor__token=token).id


def expect_status(page, owner: str, text: str) -> None:
    expect(page.locator(".nwcb-status")).to_have_attribute("data-owner", owner)
    expect(page.locator(".nwcb-status-text")).to_have_text(text)
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online")


def test_status_line_tells_who_answers_from_bot_to_person_to_resolved(page, demo_store, live_server_url):
    alice = agent_named(demo_store)
    open_chat(page, f"{live_server_url}/demo/")
    expect_status(page, "bot", "Online")
    for light in (".nwcb-send", ".nwcb-bubble", ".nwcb-close"):  # not the dark text colour of other buttons
        expect(page.locator(light)).to_have_css("color", "rgb(255, 255, 255)")
    send(page, "I'd like to talk to a person, please")
    expect(acked(page, "talk to a person")).to_have_count(1)
    conversation_id = conversation_of(page, demo_store)

    off_loop(ownership.conversation_hand_off, conversation_id, "visitor asked for a person", code="asked_for_person")
    expect_status(page, "waiting", "Waiting for a person\u2026")
    expect(page.locator(".nwcb-msg--system .nwcb-text")).to_have_text(demo_store.handoff_text)
    expect(page.locator(".nwcb-contact")).to_be_hidden()  # someone is online: no need to leave an address
    screenshot(page, "widget-waiting.png")

    off_loop(ownership.conversation_take_over, conversation_id, agent=alice)
    expect_status(page, "human", "Chatting with Alice Smith")
    expect(page.locator(".nwcb-msg--system .nwcb-text").last).to_have_text("Alice Smith joined the chat.")
    off_loop(services.agent_message_send, alice, conversation_id, "Hi, I'm Alice. Let me look at your order.",
             "alice-1")
    agent = page.locator(".nwcb-msg--agent[data-id]")
    expect(agent.locator(".nwcb-text")).to_have_text("Hi, I'm Alice. Let me look at your order.")
    expect(agent.locator(".nwcb-meta .nwcb-who")).to_have_text("Alice Smith")
    screenshot(page, "widget-human.png")

    # A reload learns the holder from what it remembered: the session frame does not name her.
    page.reload()
    page.locator(".nwcb-bubble").click()
    expect_status(page, "human", "Chatting with Alice Smith")
    expect(page.locator(".nwcb-msg--agent[data-id] .nwcb-who")).to_have_text("Alice Smith")

    off_loop(ownership.conversation_resolve, conversation_id, agent=alice)
    expect_status(page, "resolved", "Conversation resolved")
    expect(page.locator(".nwcb-csat")).to_be_visible()
    assert page.script_errors == [] and page.console_errors == []


def receive(page, frame: dict) -> None:
    """Hand the widget a frame as if the server had sent it."""
    page.evaluate("frame => window.__sockets.at(-1).dispatchEvent("
                  "new MessageEvent('message', {data: JSON.stringify(frame)}))", frame)


def test_without_names_the_widget_says_our_team_and_agent(page, demo_store, live_server_url):
    """A status frame without `agent`, an agent message without `author` (older servers)."""
    open_chat(page, f"{live_server_url}/demo/")
    receive(page, {"type": "status", "status": "human", "agents_online": True})
    expect_status(page, "human", "Chatting with our team")
    receive(page, {"type": "message", "message": {"id": 999001, "seq": 1, "sender": "agent", "text": "Hello there",
                                                  "created_at": "2026-01-01T10:00:00Z"}})
    expect(page.locator(".nwcb-msg--agent .nwcb-who")).to_have_text("Agent")


def test_frames_the_widget_does_not_know_are_ignored(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    page.evaluate("""() => {
        const ws = window.__sockets.at(-1);
        for (const frame of [{type: "confetti", colour: "gold"}, {type: "status", status: "on-fire"},
                             {type: "status", status: "constructor"},
                             {type: "status"}, {noType: true}, 42, null, "text"]) {
            ws.dispatchEvent(new MessageEvent("message", {data: JSON.stringify(frame)}));
        }
    }""")
    expect_status(page, "bot", "Online")
    send(page, "still working?")
    expect(acked(page, "still working?")).to_have_count(1)
    assert page.script_errors == []


def test_nobody_online_after_hand_off_offers_to_leave_an_email(page, demo_store, live_server_url):
    agent_named(demo_store, online=False)
    open_chat(page, f"{live_server_url}/demo/")
    send(page, "can a human call me back?")
    expect(acked(page, "call me back")).to_have_count(1)
    conversation_id = conversation_of(page, demo_store)
    expect(page.locator(".nwcb-contact")).to_be_hidden()

    off_loop(ownership.conversation_hand_off, conversation_id, "visitor asked for a person", code="asked_for_person")
    expect_status(page, "waiting", "Our team is away")
    expect(page.locator(".nwcb-msg--system .nwcb-text")).to_have_text(demo_store.no_agent_text)
    form = page.locator(".nwcb-contact")
    expect(form).to_be_visible()
    expect(form).to_contain_text("Leave your e-mail and we'll get back to you")
    expect(form).to_have_attribute("data-done", "false")
    screenshot(page, "widget-contact.png")

    form.locator(".nwcb-contact-input").fill("nope")
    form.locator("button[type=submit]").click()
    expect(form.locator(".nwcb-card-error")).to_contain_text("doesn't look like an e-mail address")
    expect(form.locator(".nwcb-contact-input")).to_have_attribute("aria-invalid", "true")
    assert sent_frames(page, "contact") == [{"type": "contact", "email": "nope", "transcript": False}]
    assert Visitor.objects.get(tenant=demo_store).email == ""

    form.locator(".nwcb-contact-input").fill("ann@example.com")
    form.get_by_label("Also e-mail me a copy of this chat").check()  # the transcript, when it is resolved
    form.locator(".nwcb-contact-input").press("Enter")
    expect(form).to_have_attribute("data-done", "true")
    expect(form).to_contain_text("ann@example.com")
    expect(form.locator(".nwcb-contact-input")).to_be_hidden()
    expect(form.locator(".nwcb-contact-transcript")).to_be_hidden()
    assert Visitor.objects.get(tenant=demo_store).email == "ann@example.com"
    assert Conversation.objects.get(pk=conversation_id).transcript_requested
    screenshot(page, "widget-contact-done.png")

    page.reload()  # still waiting, nobody online: the address was left already
    page.locator(".nwcb-bubble").click()
    expect_status(page, "waiting", "Our team is away")
    expect(page.locator(".nwcb-msg[data-id]")).to_have_count(2)
    expect(page.locator(".nwcb-contact")).to_be_hidden()
    assert page.script_errors == [] and page.console_errors == []


def test_resolved_conversation_asks_for_a_rating_and_stores_it(page, demo_store, live_server_url):
    alice = agent_named(demo_store)
    open_chat(page, f"{live_server_url}/demo/")
    send(page, "where is my parcel?")
    expect(acked(page, "where is my parcel?")).to_have_count(1)
    conversation_id = conversation_of(page, demo_store)
    off_loop(services.agent_message_send, alice, conversation_id, "It left our warehouse today.", "alice-1")
    expect(page.locator(".nwcb-msg--agent[data-id]")).to_have_count(1)
    expect(page.locator(".nwcb-csat")).to_be_hidden()

    off_loop(ownership.conversation_resolve, conversation_id, agent=alice)
    csat = page.locator(".nwcb-csat")
    expect(csat).to_be_visible()
    expect(csat).to_contain_text("How did we do?")
    buttons = csat.locator("button[data-csat]")
    expect(buttons).to_have_count(5)
    labels = [buttons.nth(n).get_attribute("aria-label") for n in range(5)]
    assert labels[0].startswith("Very poor") and labels[4].startswith("Excellent")
    buttons.nth(3).hover()
    screenshot(page, "widget-csat.png")

    csat.locator('button[data-csat="4"]').click()
    expect(csat).to_have_attribute("data-done", "true")
    expect(csat).to_contain_text("Thanks for your feedback")
    expect(page.locator(".nwcb-input")).to_be_focused()  # focus is not lost with the stars
    wait_until(lambda: Conversation.objects.get(pk=conversation_id).csat == 4, what="stored CSAT")
    assert sent_frames(page, "csat") == [{"type": "csat", "rating": 4}]
    notes = json.loads(page.evaluate(f"localStorage.getItem('nwcb:conversations:{demo_store.public_key}')"))
    assert notes[str(conversation_id)]["rated"] == 4
    screenshot(page, "widget-csat-done.png")

    # Writing again reopens the conversation for the bot; the rating is forgotten on both sides.
    send(page, "one more question")
    expect_status(page, "bot", "Online")
    expect(csat).to_be_hidden()
    assert Conversation.objects.get(pk=conversation_id).csat is None
    assert page.script_errors == [] and page.console_errors == []


def typing_frames(page) -> list[bool]:
    return [f["on"] for f in sent_frames(page, "typing")]


def test_visitor_typing_is_told_only_while_people_have_the_conversation(page, demo_store, live_server_url):
    alice = agent_named(demo_store)
    open_chat(page, f"{live_server_url}/demo/")
    send(page, "hello")
    expect(acked(page, "hello")).to_have_count(1)
    conversation_id = conversation_of(page, demo_store)
    box = page.locator(".nwcb-input")

    box.press_sequentially("the bot does not need to know", delay=20)
    page.wait_for_timeout(3500)
    assert typing_frames(page) == []
    box.fill("")

    off_loop(ownership.conversation_hand_off, conversation_id, "visitor asked for a person", code="asked_for_person")
    expect_status(page, "waiting", "Waiting for a person\u2026")
    started = time.monotonic()
    box.press_sequentially("where is my order, it has been a week now", delay=75)  # about 3 s of typing
    typed_for = time.monotonic() - started
    frames = typing_frames(page)
    assert frames[0] is True and False not in frames
    assert frames.count(True) <= typed_for // 2 + 1, (frames, typed_for)  # at most one per 2 s
    wait_until(lambda: typing_frames(page)[-1] is False, timeout=5, what="typing off after 3 s idle")
    assert typing_frames(page).count(False) == 1

    off_loop(ownership.conversation_take_over, conversation_id, agent=alice)
    expect_status(page, "human", "Chatting with Alice Smith")
    before = len(page.evaluate("window.__sent"))
    box.fill("")
    box.press_sequentially("thanks", delay=20)
    box.press("Enter")
    expect(acked(page, "thanks")).to_have_count(1)
    sent = [json.loads(f) for f in page.evaluate("window.__sent")[before:]]
    kinds = [(f["type"], f.get("on")) for f in sent]
    assert kinds[0] == ("typing", True) and kinds[-2:] == [("typing", False), ("message", None)]

    off_loop(ownership.conversation_resolve, conversation_id, agent=alice)
    expect_status(page, "resolved", "Conversation resolved")
    before = len(typing_frames(page))
    box.press_sequentially("and after it is resolved", delay=20)
    page.wait_for_timeout(3500)
    assert len(typing_frames(page)) == before


def distance_from_bottom(page) -> float:
    return page.locator(".nwcb-messages").evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight")


def newest_in_view(page) -> bool:
    """The last message's bottom edge lies inside the visible part of the list."""
    return page.locator(".nwcb-messages").evaluate("""l => {
        const items = l.querySelectorAll('.nwcb-msg');
        const last = items[items.length - 1].getBoundingClientRect(), box = l.getBoundingClientRect();
        return last.bottom <= box.bottom + 1 && last.top >= box.top - 1
            && l.scrollHeight - l.scrollTop - l.clientHeight < 2;
    }""")


def test_newest_message_stays_in_view_when_a_phone_keyboard_opens(browser, demo_store, live_server_url,
                                                                   celery_worker):
    """A phone (390 px wide): the keyboard takes the viewport to 500 px; the newest reply stays in view."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_chat(page, f"{live_server_url}/demo/")
        questions = ["How long does shipping take?", "What is your return policy?",
                     "Which payment methods do you accept?", "How long does shipping take to Canada?"]
        for n, question in enumerate(questions, 1):
            send(page, question)
            expect(page.locator(".nwcb-msg--bot[data-id]")).to_have_count(n, timeout=ANSWER_TIMEOUT_MS)
        wait_until(lambda: newest_in_view(page), what="newest reply in view at full height")

        page.set_viewport_size({"width": 390, "height": 500})  # the keyboard opens
        wait_until(lambda: newest_in_view(page), timeout=3,
                   what=f"newest reply in view at 500 px (list {distance_from_bottom(page)} px above it)")

        page.locator(".nwcb-input").fill("A longer question\nover\nseveral\nlines")  # the draft grows
        wait_until(lambda: newest_in_view(page), timeout=3,
                   what=f"newest reply in view with a tall draft ({distance_from_bottom(page)} px)")
        page.locator(".nwcb-input").press("Enter")
        expect(page.locator(".nwcb-msg--bot[data-id]")).to_have_count(len(questions) + 1, timeout=ANSWER_TIMEOUT_MS)
        send(page, "What is your return policy for shoes?")
        expect(page.locator(".nwcb-msg--bot[data-id]")).to_have_count(len(questions) + 2, timeout=ANSWER_TIMEOUT_MS)
        wait_until(lambda: newest_in_view(page), timeout=3, what="newest reply in view after more replies")
        expect(page.locator(".nwcb-input")).to_be_in_viewport()
        screenshot(page, "widget-phone-keyboard.png")

        # Read back up: a resize must not yank the visitor down again.
        page.locator(".nwcb-messages").evaluate("l => { l.scrollTop = 0; }")
        page.wait_for_timeout(200)
        page.set_viewport_size({"width": 390, "height": 460})
        page.wait_for_timeout(300)
        assert page.locator(".nwcb-messages").evaluate("l => l.scrollTop") == 0
    finally:
        context.close()

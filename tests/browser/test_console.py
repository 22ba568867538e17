"""The agent console in headless Chromium against the real ASGI server, worker, PostgreSQL and Redis,
with a visitor chatting through the widget on the demo store in another browser context.

Screenshots of the console go to test-artifacts/ (gitignored).
"""
import json
import re
import threading

import pytest
from django.db import connection

from chatbot.console import assist

from chatbot.conversations import ownership, services
from chatbot.models import AssistSuggestion, CannedReply, Conversation, Feedback, Message
from tests.browser import test_widget
from tests.browser.test_widget import ANSWER_TIMEOUT_MS, SHIPPING, SOCKET_SPY, open_chat, screenshot, send, wait_until
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

# The widget tests' Chromium and demo store (with the knowledge entries the bot answers from).
browser, demo_store, other_store = test_widget.browser, test_widget.demo_store, test_widget.other_store

PASSWORD = "agent-pass-123"
CANNED = "Hi, I'm Alice from Northwind. How can I help?"
XSS = '<img src=x onerror="window.__xss=1">'


def new_page(browser, width: int = 1440, height: int = 900):
    """A page in a context of its own (its own cookies), recording script errors and sent socket frames."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(SOCKET_SPY)
    page = context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    page.on("dialog", lambda dialog: pytest.fail(f"page opened a dialog: {dialog.message}"))
    return page


@pytest.fixture
def pages(browser):
    opened = []

    def make(**size):
        page = new_page(browser, **size)
        opened.append(page)
        return page

    yield make
    for page in opened:
        page.context.close()


def agent(tenant, username: str, name: str, role: str = "agent"):
    membership, _ = services.agent_add(tenant, username, password=PASSWORD, role=role, name=name)
    return membership.user


def log_in(page, live_server_url: str, username: str) -> None:
    """Through the real login form, as an agent would."""
    page.goto(f"{live_server_url}/console/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/console/$"))
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server_url}/console/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online", timeout=15_000)


def off_loop(service, *args, **kwargs):
    """Call a service in a thread of its own: Playwright runs an event loop in the test's thread, where
    the channel layer's async_to_sync refuses to publish, so the service's events would reach no socket."""
    result = {}

    def run():
        try:
            result["value"] = service(*args, **kwargs)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result["value"]


def sent_frames(page, frame_type: str) -> list[dict]:
    return [f for f in map(json.loads, page.evaluate("window.__sent")) if f["type"] == frame_type]


def test_agent_takes_over_a_hand_off_live_and_the_visitor_rates_the_chat(pages, demo_store, live_server_url,
                                                                        celery_worker):
    agent(demo_store, "alice", "Alice Agent")
    CannedReply.objects.create(tenant=demo_store, shortcut="greet", text=CANNED)
    console = pages()
    log_in(console, live_server_url, "alice")
    expect(console.locator("#inbox-empty")).to_be_visible()

    visitor = pages(width=1280, height=800)
    open_chat(visitor, f"{live_server_url}/demo/")
    send(visitor, "Can I talk to a real person please")

    # The hand-off appears in the inbox without a reload.
    row = console.locator('.conv[data-status="waiting"]')
    expect(row).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    expect(row.locator(".badge-waiting")).to_have_text("Waiting")
    expect(row).to_contain_text("visitor asked for a person")
    expect(row.locator(".badge-wait")).to_be_visible()
    expect(console.locator('.tab-count[data-count="unassigned"]')).to_have_text("1")
    screenshot(console, "console-inbox.png")
    conversation = Conversation.objects.get(tenant=demo_store)
    assert row.get_attribute("data-id") == str(conversation.id)

    row.click()
    transcript = console.locator("#transcript")
    expect(transcript.locator(".msg--visitor .msg-bubble")).to_have_text(["Can I talk to a real person please"])
    expect(transcript.locator(".msg--system")).to_have_count(1)  # the hand-off notice
    console.locator('[data-action="take_over"]').click()
    expect(console.locator("#thread-sub .badge-human")).to_have_text("You")
    expect(transcript.locator(".msg--system", has_text="Alice Agent joined the chat.")).to_have_count(1)
    expect(console.locator('[data-action="take_over"]')).to_be_hidden()

    # A private note stays with the team.
    console.locator('.mode[data-mode="note"]').click()
    composer = console.locator("#composer-input")
    composer.fill("VIP customer, second order this week")
    composer.press("Enter")
    expect(transcript.locator(".msg--note[data-id] .msg-bubble")).to_have_text("VIP customer, second order this week")

    # A reply from a canned reply, edited before sending; the visitor sees the agent typing.
    console.locator('.mode[data-mode="reply"]').click()
    composer.press_sequentially("/gre")
    expect(console.locator("#canned-menu .canned-option")).to_have_text(["/greet" + CANNED])
    expect(visitor.locator(".nwcb-typing")).to_be_visible()
    composer.press("Enter")
    expect(composer).to_have_value(CANNED)
    composer.press("End")
    composer.press_sequentially(" Ask away.")
    composer.press("Enter")
    reply = CANNED + " Ask away."
    expect(transcript.locator(".msg--agent:not(.msg--note)[data-id] .msg-bubble")).to_have_text(reply)
    expect(composer).to_have_value("")

    agent_message = visitor.locator(".nwcb-msg--agent")
    expect(agent_message).to_have_count(1)
    expect(agent_message.locator(".nwcb-who")).to_contain_text("Alice Agent")
    expect(agent_message).to_contain_text(reply)
    expect(visitor.locator(".nwcb-typing")).to_be_hidden()
    assert visitor.get_by_text("VIP customer").count() == 0
    [sent] = [f for f in sent_frames(console, "message") if f["text"] == reply]
    assert len(sent["client_id"]) == 36

    # While a person has the chat, the agent sees the visitor typing.
    visitor.locator(".nwcb-input").press_sequentially("Thanks! One more thing")
    expect(console.locator("#typing-line")).to_be_visible()
    expect(console.locator(f'.conv[data-id="{conversation.id}"] .conv-typing')).to_have_text("typing…")

    # Back to the bot: the visitor's next question gets the knowledge entry.
    console.locator('[data-action="hand_back"]').click()
    expect(console.locator("#thread-sub .badge-bot")).to_have_text("Bot")
    send(visitor, "how long does shipping take?")
    expect(visitor.locator(".nwcb-msg--bot[data-id] .nwcb-text").last).to_have_text(SHIPPING,
                                                                                   timeout=ANSWER_TIMEOUT_MS)
    bot = transcript.locator(".msg--bot", has_text=SHIPPING)
    expect(bot).to_have_count(1)
    expect(console.locator("#typing-line")).to_be_hidden()

    # Why the bot said it, and the agent's verdict on it.
    bot.locator(".why summary").click()
    expect(bot.locator(".why-ground")).to_contain_text("How long does shipping take?")
    expect(bot.locator(".why-body")).to_contain_text("retrieval-minilm")
    bot.locator('[data-rating="up"]').click()
    expect(bot.locator('[data-rating="up"]')).to_have_attribute("aria-pressed", "true")
    bot.locator('[data-fb-open="intent"]').click()
    bot.locator('[data-fb-form="intent"] input').fill("shipping_time")
    bot.locator('[data-fb-save="intent"]').click()
    expect(bot.locator(".fb-status")).to_contain_text("intent: shipping_time")
    feedback = Feedback.objects.get(message__text=SHIPPING, source="agent")
    assert (feedback.rating, feedback.corrected_intent, feedback.agent.username) == ("up", "shipping_time", "alice")
    screenshot(console, "console-conversation.png")

    # Resolved: the visitor is asked for a rating, and her 5 is stored.
    console.locator('[data-action="resolve"]').click()
    expect(console.locator("#thread-sub .badge-resolved")).to_be_visible()
    expect(console.locator("#composer-hint")).to_contain_text("Resolved")
    csat = visitor.locator(".nwcb-csat")
    expect(csat).to_be_visible()
    csat.locator('button[data-csat="5"]').click()
    expect(visitor.locator('.nwcb-csat[data-done="true"]')).to_be_visible()
    wait_until(lambda: Conversation.objects.get(pk=conversation.pk).csat == 5, what="the CSAT stored")
    expect(console.locator("#thread-sub .badge-resolved")).to_contain_text("★★★★★")
    screenshot(console, "console-resolved.png")
    assert console.script_errors == [] and visitor.script_errors == []


def test_markup_from_a_visitor_is_inert_text_in_the_console(pages, demo_store, live_server_url):
    agent(demo_store, "alice", "Alice Agent")
    console = pages()
    log_in(console, live_server_url, "alice")
    visitor = pages(width=1280, height=800)
    open_chat(visitor, f"{live_server_url}/demo/")
    send(visitor, XSS)

    row = console.locator(".conv")
    expect(row).to_have_count(1)
    expect(row.locator(".conv-text")).to_have_text(XSS)
    row.click()
    expect(console.locator("#transcript .msg--visitor .msg-bubble")).to_have_text(XSS)
    console.wait_for_timeout(500)  # an image error handler would have run by now
    assert console.evaluate("window.__xss") is None
    assert console.locator("#console img").count() == 0
    assert console.script_errors == []


def test_reply_written_offline_is_sent_once_after_reconnecting(pages, demo_store, live_server_url):
    alice = agent(demo_store, "alice", "Alice Agent")
    session = services.visitor_session_open(demo_store, None)
    services.message_receive(session.conversation.id, "Where is my parcel?", "v-1")
    ownership.conversation_take_over(session.conversation.id, agent=alice)
    console = pages()
    log_in(console, live_server_url, "alice")
    console.locator(f'.conv[data-id="{session.conversation.id}"]').click()
    expect(console.locator("#transcript .msg--visitor")).to_have_count(1)

    console.context.set_offline(True)
    expect(console.locator("#conn")).to_have_attribute("data-state", "offline")
    composer = console.locator("#composer-input")
    composer.fill("It left our warehouse this morning.")
    composer.press("Enter")
    expect(console.locator("#transcript .msg--pending")).to_have_count(1)
    console.wait_for_timeout(1500)  # a reconnect attempt or two fail meanwhile
    assert not Message.objects.filter(text="It left our warehouse this morning.").exists()

    console.context.set_offline(False)
    expect(console.locator("#conn")).to_have_attribute("data-state", "online", timeout=15_000)
    sent = console.locator("#transcript .msg--agent[data-id] .msg-bubble")
    expect(sent).to_have_text(["It left our warehouse this morning."])
    expect(console.locator("#transcript .msg--pending")).to_have_count(0)
    assert Message.objects.filter(text="It left our warehouse this morning.").count() == 1
    assert len(sent_frames(console, "open")) >= 2  # the conversation was opened again after the reconnect
    assert console.script_errors == []


def test_conversation_held_by_a_colleague_shows_who_has_it(pages, demo_store, live_server_url):
    agent(demo_store, "alice", "Alice Agent")
    bob = agent(demo_store, "bob", "Bob Builder")
    session = services.visitor_session_open(demo_store, None)
    services.message_receive(session.conversation.id, "Is my refund through?", "v-1")
    ownership.conversation_take_over(session.conversation.id, agent=bob)
    console = pages()
    log_in(console, live_server_url, "alice")

    row = console.locator(f'.conv[data-id="{session.conversation.id}"]')
    expect(row.locator(".badge-human")).to_have_text("Bob Builder")
    row.click()
    expect(console.locator("#composer-hint")).to_have_text("Bob Builder is handling this conversation. Notes only.")
    expect(console.locator('.mode[data-mode="reply"]')).to_be_disabled()
    console.locator('[data-action="take_over"]').click()
    expect(console.locator("#alert")).to_be_visible()
    expect(console.locator("#alert-text")).to_have_text("Bob Builder is handling this conversation.")
    options = console.locator("#reassign option").all_inner_texts()
    assert options == ["Reassign…", "Alice Agent (you)", "Bob Builder ✓"]


def test_suggestion_chip_fills_the_composer_and_is_reported_as_used(pages, demo_store, live_server_url):
    alice = agent(demo_store, "alice", "Alice Agent")
    session = services.visitor_session_open(demo_store, None)
    asked, _ = services.message_receive(session.conversation.id, "Do you ship to Canada?", "v-1")
    ownership.conversation_take_over(session.conversation.id, agent=alice)
    console = pages()
    log_in(console, live_server_url, "alice")
    console.locator(f'.conv[data-id="{session.conversation.id}"]').click()
    expect(console.locator("#transcript .msg--visitor")).to_have_count(1)

    off_loop(assist.suggestions_store, asked.id, ["Yes, we ship to Canada in 5-7 days.", "Let me check that for you."],
             "test")
    chips = console.locator("#suggestions .suggestion")
    expect(chips).to_have_text(["Yes, we ship to Canada in 5-7 days.", "Let me check that for you."])
    chips.nth(0).click()
    expect(console.locator("#composer-input")).to_have_value("Yes, we ship to Canada in 5-7 days.")
    console.locator("#send").click()
    expect(console.locator("#transcript .msg--agent[data-id]")).to_have_count(1)
    expect(console.locator("#suggestions")).to_be_hidden()
    assert sent_frames(console, "message")[-1]["suggestion"] == 0
    suggestion = AssistSuggestion.objects.get(message=asked)
    assert (suggestion.outcome, suggestion.chosen) == ("sent", 0)


def test_inbox_keeps_the_servers_order_as_conversations_change(pages, demo_store, live_server_url):
    """Waiting first, then unhappy visitors, then the longest wait: a hand-off arriving live moves up."""
    agent(demo_store, "alice", "Alice Agent")
    conversations = []
    for n, text in enumerate(["Do you sell gloves?", "This is useless, my order is late!", "Talk to a human"]):
        session = services.visitor_session_open(demo_store, None)
        asked, _ = services.message_receive(session.conversation.id, text, f"v-{n}")
        conversations.append((session.conversation.id, asked))
    oldest, unhappy, waiting = conversations
    services.message_label(unhappy[1].id, sentiment="negative", sentiment_confidence=0.9)
    ownership.conversation_hand_off(waiting[0], "visitor asked for a person", code="asked_for_person")
    console = pages()
    log_in(console, live_server_url, "alice")

    def order():
        return console.locator(".conv").evaluate_all("rows => rows.map(r => Number(r.dataset.id))")

    expect(console.locator(".conv")).to_have_count(3)
    assert order() == [waiting[0], unhappy[0], oldest[0]]
    expect(console.locator('.tab-count[data-count="unassigned"]')).to_have_text("1")

    off_loop(ownership.conversation_hand_off, oldest[0], "low intent confidence (0.20)", code="low_confidence")
    expect(console.locator('.tab-count[data-count="unassigned"]')).to_have_text("2")
    wait_until(lambda: order() == [oldest[0], waiting[0], unhappy[0]], what="the hand-off moving up")
    expect(console.locator(f'.conv[data-id="{oldest[0]}"]')).to_contain_text("low intent confidence (0.20)")
    console.locator(f'.conv[data-id="{unhappy[0]}"]').click()
    expect(console.locator("#transcript .msg--visitor")).to_have_count(1)
    screenshot(console, "console-inbox-busy.png")

    console.locator('.tab[data-tab="unassigned"]').click()
    expect(console.locator(".conv")).to_have_count(2)
    console.locator("#inbox-search").fill("human")
    expect(console.locator(".conv")).to_have_count(1)
    assert order() == [waiting[0]]
    console.locator('.tab[data-tab="mine"]').click()
    expect(console.locator("#inbox-empty")).to_contain_text("No conversations match")
    assert console.script_errors == []


@pytest.mark.parametrize("width", [1280, 1366, 1440, 1600])
def test_a_managers_links_all_show_in_a_laptop_window(pages, demo_store, live_server_url, width):
    """A manager has eight links; at a laptop's width none hides behind the bar's right side, where she
    would never think to scroll (the store chips and her name give way first)."""
    agent(demo_store, "mia", "Mia Manager", role="manager")
    console = pages(width=width, height=800)
    log_in(console, live_server_url, "mia")
    expect(console.locator(".topnav a")).to_have_count(8)
    hidden = console.evaluate("""() => {
        const nav = document.querySelector('.topnav').getBoundingClientRect();
        return [...document.querySelectorAll('.topnav a')]
            .filter(a => a.getBoundingClientRect().right > nav.right + 0.5).map(a => a.textContent.trim());
    }""")
    assert hidden == [], f"at {width} px these links are cut off: {hidden}"
    expect(console.locator(".me .avatar")).to_be_visible()
    expect(console.get_by_role("button", name="Log out")).to_be_visible()
    screenshot(console, f"console-manager-{width}.png")


def test_console_fits_a_narrow_window_and_the_canned_page_looks_right(pages, demo_store, live_server_url):
    agent(demo_store, "mia", "Mia Manager", role="manager")
    CannedReply.objects.create(tenant=demo_store, shortcut="greet", text=CANNED)
    CannedReply.objects.create(tenant=demo_store, shortcut="refund-policy",
                               text="You can return unused items within 30 days for a full refund.")
    session = services.visitor_session_open(demo_store, None)
    services.message_receive(session.conversation.id, "My jacket arrived torn, this is terrible!", "v-1")
    services.message_label(Message.objects.get(conversation=session.conversation).id, intent="complaint",
                           intent_confidence=0.91, sentiment="negative", sentiment_confidence=0.88)
    console = pages(width=900, height=700)
    log_in(console, live_server_url, "mia")
    row = console.locator(f'.conv[data-id="{session.conversation.id}"]')
    expect(row.locator(".badge-negative")).to_be_visible()
    row.click()
    expect(console.locator("#transcript .labels")).to_contain_text("complaint")
    composer = console.locator("#composer-input")
    composer.press_sequentially("/")
    expect(console.locator("#canned-menu .canned-option")).to_have_count(2)
    for locator in ("#send", "#composer-input", '[data-action="resolve"]', ".conv"):
        expect(console.locator(locator).first).to_be_in_viewport()
    width = console.evaluate("document.documentElement.scrollWidth")
    assert width <= 900, f"the page scrolls sideways ({width} px)"
    screenshot(console, "console-narrow.png")

    console.goto(f"{live_server_url}/console/canned/")
    console.locator("#id_shortcut").fill("greet")
    console.locator("#id_text").fill("Hello again")
    console.locator("form.card-body button[type=submit]").click()
    expect(console.locator(".field-error")).to_have_text("The shortcut /greet is taken already in this store; "
                                                         "choose another.")
    console.set_viewport_size({"width": 1280, "height": 800})
    screenshot(console, "console-canned.png")
    console.context.clear_cookies()
    console.goto(f"{live_server_url}/accounts/login/")
    screenshot(console, "console-login.png")

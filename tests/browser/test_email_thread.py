"""E-mail continuity, the whole story in a real browser (issue 27): a visitor chats in the widget on the demo page,
asks for a person while no agent is online, leaves her address in the contact card and closes the tab; the store's
agent hears of it by e-mail, logs into the console, takes the conversation and replies; the reply reaches a real
SMTP server with a Reply-To of its conversation; the visitor answers that mail (quoted history and all) and the
agent sees it live; back on the store's site the widget shows her the whole thread.

Headless Chromium against the real ASGI server, a real Celery worker, PostgreSQL and Redis, and an SMTP server on
loopback (aiosmtpd). The mails go the way they go in production: the web process marks the reply `queued`, the
worker side hears of it and a worker sends it (its environment points Django's SMTP backend at the test's server).
The answer is POSTed, signed, to /inbound/email/ in this process, as in tests/browser/test_console_email.py (the
session's server was started without an inbound secret). See docs/email.md."""
import hashlib
import hmac
import re
import shutil
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.mail import presence as visitor_presence
from chatbot.mail import tokens
from chatbot.models import AgentMembership, Conversation, Message, Visitor
from tests.browser import test_widget
from tests.browser.test_console import agent, log_in, off_loop, pages  # noqa: F401 - pages is a fixture
from tests.browser.test_widget import ANSWER_TIMEOUT_MS, SHIPPING, acked, expect_status, open_chat, send, wait_until
from tests.chatbot.mailserver import SmtpServer, body
from tests.conftest import needs_services
from tests.processes import Worker

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

# The widget tests' Chromium and demo store (with the knowledge entries the bot answers from).
browser, context, demo_store, other_store = (test_widget.browser, test_widget.context, test_widget.demo_store,
                                             test_widget.other_store)

DOMAIN, SECRET = "in.shop.example", "thread-secret"
VISITOR_EMAIL, AGENT_EMAIL = "ann@example.com", "alice@shop.example"
FIRST, ASK = "how long does shipping take?", "My tent pole snapped. Can I talk to a person please?"
REPLY = "Hi Ann, I'm sorry about the pole! Shall we send a new one to the address on your order?"
ANSWER = "Yes please, the same address is fine. Thank you!"
MAIL_TIMEOUT = 60  # seconds: the worker may be busy answering


@pytest.fixture
def mail_worker(process_env, tmp_path_factory, smtp):
    """A real Celery worker on this run's queue whose e-mail goes to the test's SMTP server, with the reply
    addresses of DOMAIN (it answers the visitor, tells agents of hand-offs and sends the replies)."""
    env = {**process_env, "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}", "EMAIL_TIMEOUT": "3",
           "DEFAULT_FROM_EMAIL": "Chat <chat@shop.example>", "INBOUND_EMAIL_DOMAIN": DOMAIN,
           "INBOUND_EMAIL_SECRET": SECRET}
    worker = Worker(env, tmp_path_factory.mktemp("mail-worker"), name="mail")
    try:
        yield worker.start(timeout=90)
    finally:
        worker.stop()
        print(worker.text()[-3000:])


def screenshot(page, name: str) -> None:
    """Into test-artifacts/ like the other browser tests, and a copy in /tmp to look at."""
    test_widget.screenshot(page, name)
    shutil.copy(test_widget.ARTIFACTS / name, f"/tmp/{name}")


def mails_to(smtp: SmtpServer, address: str, count: int = 1) -> list:
    wait_until(lambda: len([m for m in smtp.mails() if address in m["To"]]) >= count, timeout=MAIL_TIMEOUT,
               what=f"{count} mail(s) to {address}")
    return [m for m in smtp.mails() if address in m["To"]]


def answer_by_mail(reply) -> bytes:
    """Her answer as her mail client writes it: to the Reply-To, in the thread, the agent's mail quoted below."""
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = f"Ann Example <{VISITOR_EMAIL}>"
    mail["To"] = reply["Reply-To"]
    mail["Subject"] = f"Re: {reply['Subject']}"
    mail["Date"] = format_datetime(timezone.now())
    mail["Message-ID"] = "<ann.thread.1@example.com>"
    mail["In-Reply-To"] = reply["Message-ID"]
    mail["References"] = f"{reply['References']} {reply['Message-ID']}"
    quoted = "\n".join(f"> {line}" if line else ">" for line in body(reply).splitlines())
    mail.set_content(f"{ANSWER}\n\nOn {reply['Date']}, {reply['From']} wrote:\n{quoted}\n")
    return mail.as_bytes()


def test_a_visitor_who_left_gets_the_reply_by_mail_answers_it_and_sees_the_whole_thread_in_the_widget(
        context, pages, demo_store, live_server_url, settings, smtp, mail_worker):
    settings.INBOUND_EMAIL_DOMAIN, settings.INBOUND_EMAIL_SECRET = DOMAIN, SECRET
    alice = agent(demo_store, "alice", "Alice Agent")
    alice.email = AGENT_EMAIL
    alice.save(update_fields=["email"])
    assert AgentMembership.objects.get(user=alice).notify == "each"

    # The visitor chats with the bot, then asks for a person: nobody is online.
    widget = context.new_page()
    widget.script_errors = []
    widget.on("pageerror", lambda error: widget.script_errors.append(str(error)))
    open_chat(widget, f"{live_server_url}/demo/")
    send(widget, FIRST)
    expect(widget.locator(".nwcb-msg--bot[data-id] .nwcb-text")).to_have_text(SHIPPING, timeout=ANSWER_TIMEOUT_MS)
    send(widget, ASK)
    expect(acked(widget, "snapped")).to_have_count(1)
    expect_status(widget, "waiting", "Our team is away")
    expect(widget.locator(".nwcb-msg--system .nwcb-text")).to_have_text(demo_store.no_agent_text)
    token = widget.evaluate(f"localStorage.getItem('nwcb:visitor:{demo_store.public_key}')")
    conversation = Conversation.objects.get(visitor__token=token)
    assert (conversation.status, conversation.handoff_code) == ("waiting", "asked_for_person")

    # She leaves her address (and asks for the transcript) in the contact card, and closes the tab.
    card = widget.locator(".nwcb-contact")
    expect(card).to_be_visible()
    card.locator(".nwcb-contact-input").fill(VISITOR_EMAIL)
    card.get_by_label("Also e-mail me a copy of this chat").check()
    card.locator(".nwcb-contact-input").press("Enter")
    expect(card).to_have_attribute("data-done", "true")
    expect(card).to_contain_text(VISITOR_EMAIL)
    screenshot(widget, "email-thread-1-contact.png")
    assert widget.script_errors == []
    widget.close()
    wait_until(lambda: Visitor.objects.get(token=token).email == VISITOR_EMAIL, what="her address stored")
    wait_until(lambda: not visitor_presence.visitor_connected(conversation.id), what="her widget socket gone")

    # The agent, who chose a mail for each hand-off, was told of it by the worker.
    [notice] = mails_to(smtp, AGENT_EMAIL)
    assert notice["Subject"] and notice["Auto-Submitted"] == "auto-generated"
    assert ASK in body(notice) and f"/console/#conversation-{conversation.id}" in body(notice)

    # She logs into the console, takes the conversation and replies: the reply is mailed, and marked so live.
    console = pages()
    log_in(console, live_server_url, "alice")
    console.locator(f'.conv[data-id="{conversation.id}"]').click()
    transcript = console.locator("#transcript")
    expect(transcript.locator(".msg--visitor .msg-bubble")).to_have_text([FIRST, ASK])
    console.locator('[data-action="take_over"]').click()
    expect(console.locator("#thread-sub .badge-human")).to_have_text("You")
    composer = console.locator("#composer-input")
    composer.fill(REPLY)
    composer.press("Enter")
    mine = transcript.locator(".msg--agent:not(.msg--note)[data-id]")
    expect(mine.locator(".msg-bubble")).to_have_text(REPLY)
    expect(mine.locator(".mail-mark")).to_have_text("e-mailed", timeout=MAIL_TIMEOUT * 1000)
    reply_row = Message.objects.get(conversation=conversation, text=REPLY)
    assert (reply_row.email_state, reply_row.email_attempts) == ("sent", 1)  # one attempt, at once

    # The mail at the SMTP server: to her, from Alice for the store, in the conversation's thread, answerable.
    [reply] = mails_to(smtp, VISITOR_EMAIL)
    assert len(smtp.mails()) == 2  # the notice and the reply: nothing twice, no agent notice for her address
    assert parseaddr(reply["To"])[1] == VISITOR_EMAIL
    assert "Alice Agent" in reply["From"] and "Northwind Outfitters" in reply["From"]
    reply_to = parseaddr(reply["Reply-To"])[1]
    assert re.fullmatch(rf"reply\+[0-9a-f.]+@{re.escape(DOMAIN)}", reply_to), reply_to
    assert tokens.conversation_of(reply_to.split("@")[0].removeprefix("reply+")) == conversation.id
    assert reply["Message-ID"] == f"<message.{reply_row.id}@{DOMAIN}>"
    assert reply["In-Reply-To"] == f"<conversation.{conversation.id}@{DOMAIN}>"
    assert f"<conversation.{conversation.id}@{DOMAIN}>" in reply["References"]
    assert REPLY in body(reply) and live_server_url in body(reply)

    # She answers from her inbox: the mail, signed by the inbound service, reaches the agent live.
    raw = answer_by_mail(reply)
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    response = off_loop(Client().post, "/inbound/email/", data=raw, content_type="message/rfc822",
                        headers={"X-Chatbot-Signature": signature})
    assert response.status_code == 200, response.content
    assert response.json()["stored"] is True and response.json()["conversation"] == conversation.id
    answer = transcript.locator(".msg--visitor").nth(2)
    expect(answer.locator(".msg-bubble")).to_have_text(ANSWER)  # her quoted history stripped
    expect(answer.locator(".mail-tag")).to_have_text("by e-mail")
    expect(transcript.locator(".msg--visitor .msg-bubble")).to_have_text([FIRST, ASK, ANSWER])
    assert Message.objects.get(conversation=conversation, text=ANSWER).channel == "email"
    screenshot(console, "email-thread-2-console.png")
    assert console.script_errors == []

    # Back on the store's site, in the same browser: the widget finds her conversation by her stored token and
    # shows the whole thread, her typed messages, the agent's reply and her answer by e-mail.
    again = context.new_page()
    again.script_errors = []
    again.on("pageerror", lambda error: again.script_errors.append(str(error)))
    open_chat(again, f"{live_server_url}/demo/")
    assert again.evaluate(f"localStorage.getItem('nwcb:visitor:{demo_store.public_key}')") == token
    expect(again.locator(".nwcb-msg--visitor[data-id] .nwcb-text")).to_have_text([FIRST, ASK, ANSWER])
    expect(again.locator(".nwcb-msg--bot[data-id] .nwcb-text")).to_have_text(SHIPPING)
    agent_reply = again.locator(".nwcb-msg--agent[data-id]")
    expect(agent_reply).to_have_count(1)
    expect(agent_reply.locator(".nwcb-text")).to_have_text(REPLY)
    expect(agent_reply.locator(".nwcb-who")).to_contain_text("Alice Agent")
    expect(again.locator(".nwcb-status")).to_have_attribute("data-owner", "human")
    again.locator(".nwcb-messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    screenshot(again, "email-thread-3-widget.png")
    assert again.script_errors == []
    assert Visitor.objects.filter(tenant=demo_store).count() == 1
    assert Conversation.objects.filter(tenant=demo_store).count() == 1
    assert len(smtp.mails()) == 2  # her answer mails nobody

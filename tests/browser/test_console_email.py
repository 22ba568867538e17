"""The console shows e-mail continuity: an agent's reply to a visitor who is away marked "e-mail queued", then
"e-mailed" live once it is sent; the visitor's answer by e-mail marked "by e-mail". Headless Chromium against
the real ASGI server, PostgreSQL and Redis (docs/email.md)."""
import hashlib
import hmac

import pytest
from django.test import Client

from chatbot.conversations import ownership, services
from chatbot.mail import outbound, tokens
from chatbot.models import Message, Visitor
from tests.browser import test_widget
from tests.browser.test_console import agent, log_in, off_loop, pages  # noqa: F401 - pages is a fixture
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

browser, demo_store, other_store = test_widget.browser, test_widget.demo_store, test_widget.other_store


def test_a_reply_mailed_to_an_away_visitor_and_her_answer_by_e_mail_are_marked(pages, demo_store, live_server_url,
                                                                            settings):
    settings.INBOUND_EMAIL_DOMAIN, settings.INBOUND_EMAIL_SECRET = "in.shop.example", "browser-secret"
    alice = agent(demo_store, "alice", "Alice Agent")
    session = services.visitor_session_open(demo_store, None)
    services.message_receive(session.conversation.id, "Can you write to me?", "v-1")
    Visitor.objects.filter(pk=session.visitor.pk).update(email="ann@example.com")  # she left, widget closed
    ownership.conversation_take_over(session.conversation.id, agent=alice)
    console = pages()
    log_in(console, live_server_url, "alice")
    console.locator(f'.conv[data-id="{session.conversation.id}"]').click()
    expect(console.locator("#transcript .msg--visitor")).to_have_count(1)

    composer = console.locator("#composer-input")
    composer.fill("Your parcel left this morning.")
    composer.press("Enter")
    mine = console.locator("#transcript .msg--agent[data-id]")
    expect(mine.locator(".mail-mark")).to_have_text("e-mail queued")
    reply = Message.objects.get(text="Your parcel left this morning.")
    assert off_loop(outbound.mail_send, reply.id) == "sent"
    expect(mine.locator(".mail-mark")).to_have_text("e-mailed")

    raw = (f"From: ann@example.com\r\nTo: reply+{tokens.reply_token(session.conversation.id)}@in.shop.example\r\n"
           "Subject: Re: Your conversation\r\nMessage-ID: <ann.1@example.com>\r\n\r\nGreat, thank you!\r\n\r\n"
           "On Tue, Mar 3, 2026 at 10:15 AM Alice <chat@shop.example> wrote:\r\n> Your parcel left this morning.\r\n"
           ).encode()
    signature = "sha256=" + hmac.new(b"browser-secret", raw, hashlib.sha256).hexdigest()
    response = off_loop(Client().post, "/inbound/email/", data=raw, content_type="message/rfc822",
                        headers={"X-Chatbot-Signature": signature})
    assert response.status_code == 200
    answer = console.locator("#transcript .msg--visitor").nth(1)
    expect(answer.locator(".msg-bubble")).to_have_text("Great, thank you!")
    expect(answer.locator(".mail-tag")).to_have_text("by e-mail")
    test_widget.screenshot(console, "console-email.png")
    assert console.script_errors == []

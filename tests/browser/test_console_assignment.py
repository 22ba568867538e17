"""The console with automatic assignment and the first-response target, in headless Chromium against the real
server: a hand-off given to the logged-in agent shows up as hers live, and the inbox shows each open hand-off's
timer (time left, or overdue) until an agent answers."""
from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.conversations import ownership, services
from chatbot.models import Conversation, Tenant
from tests.browser import test_console
from tests.browser.test_console import agent, log_in, off_loop
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

browser, demo_store, other_store, pages = (test_console.browser, test_console.demo_store, test_console.other_store,
                                           test_console.pages)


def waiting_conversation(tenant, text: str) -> Conversation:
    session = services.visitor_session_open(tenant, None)
    services.message_receive(session.conversation.id, text, "v-1")
    ownership.conversation_hand_off(session.conversation.id, "visitor asked for a person", code="asked_for_person")
    return session.conversation


def test_the_inbox_shows_the_first_response_timer_until_an_agent_answers(pages, demo_store, live_server_url):
    alice = agent(demo_store, "alice", "Alice Agent")
    Tenant.objects.filter(pk=demo_store.pk).update(first_response_minutes=30)
    late, running = waiting_conversation(demo_store, "Hello?"), waiting_conversation(demo_store, "Anyone there?")
    Conversation.objects.filter(pk=late.pk).update(first_response_due=timezone.now() - timedelta(minutes=7))
    console = pages()
    log_in(console, live_server_url, "alice")
    late_chip = console.locator(f'.conv[data-id="{late.id}"] .badge-sla')
    expect(late_chip).to_have_attribute("data-sla", "overdue")
    expect(late_chip).to_have_text("overdue 7m")
    running_chip = console.locator(f'.conv[data-id="{running.id}"] .badge-sla')
    expect(running_chip).to_have_attribute("data-sla", "running")
    expect(running_chip).to_have_text("30m to reply")
    off_loop(services.agent_message_send, alice, running.id, "Hi, Alice here.", "a-1")
    expect(running_chip).to_have_count(0)  # answered: the timer stops
    assert console.script_errors == []


def test_a_hand_off_assigned_automatically_is_hers_live(pages, demo_store, live_server_url):
    agent(demo_store, "alice", "Alice Agent")
    Tenant.objects.filter(pk=demo_store.pk).update(assignment=Tenant.Assignment.ROUND_ROBIN)
    console = pages()
    log_in(console, live_server_url, "alice")
    session = services.visitor_session_open(demo_store, None)
    services.message_receive(session.conversation.id, "Can a person help me?", "v-1")
    off_loop(ownership.conversation_hand_off, session.conversation.id, "visitor asked for a person",
             code="asked_for_person")
    row = console.locator(f'.conv[data-id="{session.conversation.id}"]')
    expect(row.locator(".badge-human")).to_have_text("You")
    expect(console.locator('.tab-count[data-count="mine"]')).to_have_text("1")
    assert console.script_errors == []

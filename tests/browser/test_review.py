"""The managers' review in headless Chromium against the real ASGI server: a manager labels the weakest
item of the review queue in one click and it leaves the queue; the review list and a transcript; the
inbox marks a Spanish conversation for an agent who speaks Spanish and filters by it.

Screenshots go to test-artifacts/ (gitignored).
"""
import re

import pytest

from chatbot.models import AgentMembership, Conversation, Feedback, Message
from tests.browser import test_console, test_widget
from tests.browser.test_widget import screenshot
from tests.chatbot.test_review import PASSWORD, build_world, conversation, say
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

browser, pages = test_widget.browser, test_console.pages


def log_in(page, live_server_url: str, username: str, next_url: str) -> None:
    """Through the real login form."""
    page.goto(f"{live_server_url}/accounts/login/?next={next_url}")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server_url}{next_url}")


def test_a_manager_labels_the_weakest_queue_item_in_one_click_and_it_leaves_the_queue(pages, live_server_url):
    world = build_world()
    page = pages(width=1360, height=1000)
    log_in(page, live_server_url, "mia", "/console/review/queue/")

    items = page.locator(".queue-item")
    expect(items).to_have_count(3)
    expect(page.locator("#queue-count")).to_have_text("3 items to review")
    first = items.first
    assert first.get_attribute("data-id") == str(world["handoff3"].id)  # the weakest first
    expect(first.locator(".queue-reasons")).to_contain_text("negative streak")
    expect(first.locator(".msg--visitor .msg-bubble")).to_have_text("I want a refund now")
    screenshot(page, "review-queue.png")

    first.locator("select[name=intent]").select_option("order_status")
    first.locator("select[name=sentiment]").select_option("neutral")
    first.locator("textarea[name=reply]").fill("Let me check your order right away.")
    first.locator("[data-label]").click()

    expect(page.locator(f'.queue-item[data-id="{world["handoff3"].id}"]')).to_have_count(0)
    expect(items).to_have_count(2)
    expect(page.locator("#queue-count")).to_have_text("2 items to review")
    feedback = Feedback.objects.get(message_id=world["handoff3"].id, source="agent")
    assert (feedback.original_intent, feedback.corrected_intent) == ("refund", "order_status")
    assert (feedback.original_sentiment, feedback.corrected_sentiment) == ("negative", "neutral")
    assert feedback.correction == "Let me check your order right away." and feedback.agent.username == "mia"
    assert Message.objects.get(pk=world["handoff3"].id).reviewed_at is not None

    # A bot that was right: confirmed as it is, one click.
    second = page.locator(f'.queue-item[data-id="{world["reply2"].id}"]')
    second.locator("[data-label]").click()
    expect(second).to_have_count(0)
    assert Feedback.objects.get(message_id=world["reply2"].id, source="agent").rating == "up"

    page.reload()
    expect(items).to_have_count(1)
    assert items.first.get_attribute("data-id") == str(world["handoff1"].id)
    assert page.script_errors == []


def test_the_review_list_filters_and_opens_a_transcript_with_its_labels_and_why(pages, live_server_url):
    world = build_world()
    page = pages(width=1360, height=1000)
    log_in(page, live_server_url, "mia", "/console/review/")
    expect(page.locator(".review-table tbody tr")).to_have_count(4)
    expect(page.locator('.topnav a[aria-current="page"]')).to_have_text("Review")
    screenshot(page, "review-list.png")

    page.locator("select[name=sentiment]").select_option("negative")
    page.locator("input[name=q]").fill("order")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"sentiment=negative"))
    expect(page.locator(".review-table tbody tr")).to_have_count(1)
    expect(page.locator("#results-title")).to_have_text("1 conversation")
    screenshot(page, "review-list-filtered.png")

    page.locator(".review-link").first.click()
    expect(page).to_have_url(re.compile(rf"/console/review/{world['c2'].id}/"))
    bot = page.locator(".msg--bot")
    expect(bot.locator(".msg-bubble")).to_have_text("Your order left our warehouse today.")
    bot.locator(".why summary").click()
    expect(bot.locator(".why-body")).to_contain_text("retrieval-minilm")
    expect(bot.locator(".why-ground")).to_contain_text("Where is my order?")
    expect(page.locator(".msg--visitor .labels")).to_contain_text("intent order_status · 55%")
    expect(bot.locator(".review-feedback")).to_contain_text("Thumbs down · visitor")
    screenshot(page, "review-conversation.png")
    page.get_by_text("Back to the conversations").click()
    expect(page).to_have_url(re.compile(r"sentiment=negative"))
    assert page.script_errors == []


def test_the_inbox_marks_a_spanish_conversation_for_an_agent_who_speaks_spanish_and_filters_by_it(
        pages, live_server_url):
    world = build_world()
    AgentMembership.objects.filter(user=world["ada"], tenant=world["alpha"]).update(languages=["en", "es"])
    spanish = conversation(world["alpha"], status=Conversation.Status.WAITING, handoff_reason="language: es",
                           language="es")
    asked = say(spanish, 1, "visitor", "¿Hacen envíos a México?", language="es")
    say(spanish, 2, "system", "Le paso con una persona.", reply_to=asked, handoff_reason="language: es")
    page = pages(width=1360, height=900)
    log_in(page, live_server_url, "ada", "/console/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online", timeout=15_000)

    row = page.locator(f'.conv[data-id="{spanish.id}"]')
    expect(row.locator(".badge-lang-speaks")).to_have_text("ES ✓ you speak it")
    expect(row).to_contain_text("language: es")
    expect(page.locator(f'.conv[data-id="{world["c3"].id}"] .badge-lang')).to_have_count(0)  # the bot's own
    screenshot(page, "console-inbox-language.png")
    row.locator(".badge-lang").click()
    expect(page.locator("#inbox-search")).to_have_value("lang:es")
    expect(page.locator(".conv")).to_have_count(1)
    expect(page.locator(".conv").first).to_have_attribute("data-id", str(spanish.id))
    assert page.script_errors == []

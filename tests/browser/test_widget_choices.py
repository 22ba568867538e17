"""widget.js shows a bot question's `choices` (Yes / No before a store action) as buttons under it: a click
sends the label as an ordinary visitor message, any later message takes them away, a reload shows them again.

No worker runs: the test stores the bot's question itself (services.bot_reply_store, as the worker would),
so the visitor's answer stays unanswered and the buttons' fate is the widget's alone.
"""
from pathlib import Path

import pytest

from chatbot.conversations import services
from chatbot.models import Message
from tests.browser.test_widget import (  # noqa: F401 - fixtures
    acked, agent_named, browser, context, conversation_of, demo_store, off_loop, open_chat, other_store, page, send,
    sent_frames,
)
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

QUESTION = "Do you want me to cancel order NW-100001?"
SCREENSHOT = Path("/tmp/widget_choices.png")


def ask(page, tenant, question: str = QUESTION, choices=("Yes", "No")) -> Message:
    """The visitor writes; the bot answers her with a question and buttons, stored as the worker would."""
    send(page, "please cancel my order NW-100001")
    expect(acked(page, "please cancel my order")).to_have_count(1)
    asked = Message.objects.get(conversation_id=conversation_of(page, tenant), sender="visitor")
    return off_loop(services.bot_reply_store, asked.id, question, choices=list(choices))


def question_in(page):
    return page.locator(".nwcb-msg--bot[data-id]", has=page.locator(".nwcb-text", has_text=QUESTION))


def test_a_click_on_a_choice_sends_it_as_a_visitor_message_and_the_buttons_go(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    bot = ask(page, demo_store)
    question = question_in(page)
    expect(question).to_have_count(1)
    group = question.locator(".nwcb-choices")
    expect(group).to_have_attribute("role", "group")
    expect(group).to_have_attribute("aria-label", "Quick replies")
    buttons = group.locator("button.nwcb-choice")
    expect(buttons).to_have_text(["Yes", "No"])
    expect(buttons.nth(0)).to_have_attribute("aria-label", "Yes")
    expect(buttons.nth(0)).to_have_attribute("type", "button")
    expect(page.locator(".nwcb-choices")).to_have_count(1)  # under the question only
    # Small, in a row, right under the question's text and above its time and thumbs.
    text_box = question.locator(".nwcb-text").bounding_box()
    yes_box, no_box = buttons.nth(0).bounding_box(), buttons.nth(1).bounding_box()
    meta_box = question.locator(".nwcb-meta").bounding_box()
    assert text_box["y"] + text_box["height"] <= yes_box["y"] < meta_box["y"]
    assert abs(yes_box["y"] - no_box["y"]) < 1 and no_box["x"] > yes_box["x"] + yes_box["width"]
    assert yes_box["height"] < 40
    page.wait_for_timeout(300)  # the panel's entry animation is over
    page.screenshot(path=str(SCREENSHOT))

    # Real buttons in the tab order (backwards from the composer: the question's thumbs, then No, then Yes).
    page.locator(".nwcb-input").fill("a draft she keeps")
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
    expect(buttons.nth(1)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(buttons.nth(0)).to_be_focused()

    buttons.nth(0).click()
    expect(page.locator(".nwcb-choices")).to_have_count(0)
    expect(acked(page, "Yes")).to_have_count(1)
    expect(page.locator(".nwcb-msg--pending, .nwcb-msg--failed")).to_have_count(0)
    expect(page.locator(".nwcb-input")).to_have_value("a draft she keeps")  # a click is not the draft
    expect(page.locator(".nwcb-input")).to_be_focused()  # focus is not lost with the buttons

    answer = Message.objects.get(conversation_id=bot.conversation_id, sender="visitor", text="Yes")
    assert answer.seq == bot.seq + 1 and len(answer.client_id) == 36
    frames = sent_frames(page, "message")
    assert frames[-1] == {"type": "message", "text": "Yes", "client_id": answer.client_id}
    assert page.locator(".nwcb-msg[data-id] .nwcb-text").all_inner_texts() == [
        "please cancel my order NW-100001", QUESTION, "Yes"]
    assert page.script_errors == [] and page.console_errors == []


def test_a_reload_shows_the_buttons_again_and_a_typed_answer_takes_them_away(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    ask(page, demo_store)
    expect(question_in(page).locator(".nwcb-choice")).to_have_count(2)

    page.reload()
    page.locator(".nwcb-bubble").click()
    expect(page.locator(".nwcb-msg[data-id]")).to_have_count(2)
    buttons = question_in(page).locator(".nwcb-choice")
    expect(buttons).to_have_text(["Yes", "No"])

    page.locator(".nwcb-input").fill("no, keep it")
    page.locator(".nwcb-input").press("Enter")
    expect(page.locator(".nwcb-choices")).to_have_count(0)  # gone with the pending bubble
    expect(acked(page, "no, keep it")).to_have_count(1)
    expect(page.locator(".nwcb-choices")).to_have_count(0)
    page.reload()
    page.locator(".nwcb-bubble").click()
    expect(page.locator(".nwcb-msg[data-id]")).to_have_count(3)
    expect(page.locator(".nwcb-choices")).to_have_count(0)  # no longer the last message
    assert page.script_errors == [] and page.console_errors == []


def test_an_agent_writing_takes_the_buttons_away_and_labels_are_text(page, demo_store, live_server_url):
    alice = agent_named(demo_store)
    open_chat(page, f"{live_server_url}/demo/")
    markup = "<img src=x onerror=alert(1)>"
    bot = ask(page, demo_store, choices=("Yes", markup))
    buttons = question_in(page).locator(".nwcb-choice")
    expect(buttons).to_have_text(["Yes", markup])
    expect(buttons.nth(1)).to_have_attribute("aria-label", markup)
    assert page.locator(".nwcb-messages img").count() == 0

    off_loop(services.agent_message_send, alice, bot.conversation_id, "Let me look at that order myself.", "alice-1")
    expect(page.locator(".nwcb-msg--agent[data-id]")).to_have_count(1)
    expect(page.locator(".nwcb-choices")).to_have_count(0)
    assert not sent_frames(page, "message")[1:]  # nothing was sent for her
    assert page.script_errors == [] and page.console_errors == []

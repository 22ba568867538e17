"""widget.js outside business hours: a store that keeps hours says `open` and `back_at` in its `status` frames; the
status line and the e-mail card say when the team is back, in the visitor's language and time zone. Headless
Chromium against the real server (the frames' shape: tests/chatbot/test_hours.py)."""
import pytest

from tests.browser.test_widget import (  # noqa: F401 - fixtures
    SOCKET_SPY, browser, demo_store, expect_status, open_chat, other_store, receive,
)
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]
BACK = "2099-01-05T08:00:00Z"  # a Monday, 09:00 in Berlin, more than a week away: the date is shown


@pytest.fixture
def berlin_page(browser):
    """A page whose browser speaks German in Berlin."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE", timezone_id="Europe/Berlin")
    context.add_init_script(SOCKET_SPY)
    page = context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    yield page
    context.close()


def test_outside_hours_the_widget_says_when_the_team_is_back_and_offers_e_mail(berlin_page, demo_store,
                                                                               live_server_url):
    page = berlin_page
    open_chat(page, f"{live_server_url}/demo/?lang=de")
    receive(page, {"type": "status", "status": "waiting", "agents_online": True, "open": False, "back_at": BACK})
    status = page.locator(".nwcb-status-text")
    expect(status).to_contain_text("Wieder da: Montag")
    expect(status).to_contain_text("09:00")
    expect(page.locator(".nwcb-status")).to_have_attribute("data-agents", "away")
    card = page.locator(".nwcb-contact")
    expect(card).to_be_visible()  # agents are online, but the store is closed
    expect(card.locator(".nwcb-card-title")).to_have_text("Wir haben gerade geschlossen")
    expect(card.locator(".nwcb-card-text")).to_contain_text("Wir sind wieder da: Montag, 5. Januar")
    # The store opens (a status without `open` is a store without hours: open).
    receive(page, {"type": "status", "status": "waiting", "agents_online": True})
    expect_status(page, "waiting", "Warten auf eine Person\u2026")
    expect(card).to_be_hidden()
    assert page.script_errors == []

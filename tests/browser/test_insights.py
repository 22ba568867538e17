"""The insights pages in headless Chromium against the real ASGI server: a manager logs in through the form,
sees drawn charts (served by this server), follows a bar to the conversations behind it, and reads what to fix
first. Screenshots go to test-artifacts/ (gitignored)."""
import re

import pytest

from chatbot.conversations import services
from chatbot.models import KnowledgeEntry
from tests.browser import test_widget
from tests.browser.test_console import PASSWORD, log_in, new_page
from tests.browser.test_widget import screenshot
from tests.chatbot.test_insights import S, Story, at
from tests.conftest import needs_services
from tests.factories import TenantFactory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

browser = test_widget.browser
PERIOD_QUERY = "tenant=alpha&from=2025-03-03&to=2025-03-09"
CHARTS = ["conversations", "resolution", "reasons", "sentiment", "csat", "intents", "languages"]

# A canvas is drawn when its pixels differ from an empty canvas of the same size.
DRAWN = """canvas => {
  const blank = document.createElement("canvas");
  blank.width = canvas.width; blank.height = canvas.height;
  return canvas.width > 0 && canvas.toDataURL() !== blank.toDataURL();
}"""
# Where the first bar of a chart is, in the page's coordinates.
FIRST_BAR = """canvas => {
  const chart = Chart.getChart(canvas);
  const bar = chart.getDatasetMeta(0).data[0].getProps(["x", "y", "base"], true);
  const box = canvas.getBoundingClientRect();
  const horizontal = chart.options.indexAxis === "y";
  return horizontal ? {x: box.left + (bar.x + bar.base) / 2, y: box.top + bar.y}
                    : {x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2};
}"""


def seed_week(tenant) -> None:
    """A week of a small store: questions on a few intents, hand-offs, ratings, moods and languages."""
    s = Story(tenant)
    entry = KnowledgeEntry.objects.create(tenant=tenant, question="How long does shipping take?",
                                          answer="3 to 5 days.")
    grounding = [{"entry": entry.id, "question": entry.question, "score": 0.8}]
    for day in range(7):
        for i in range(day % 3 + 1):
            c = s.conversation(at(day, 9 + i), status=S.RESOLVED, csat=(day + i) % 5 + 1)
            _, reply = s.exchange(c, "How long does shipping take?", at(day, 9 + i), intent="shipping",
                                  grounding=grounding)
            if day == i == 0:
                s.rate(reply, "down")
            if (day + i) % 3 == 0:
                question = s.asks(c, "This is taking forever, still waiting", at(day, 9 + i, 5), intent="refund")
                s.message(c, "visitor", "¿Dónde está mi reembolso?", at(day, 9 + i, 6), intent="refund",
                          sentiment="negative", language="es")
                s.hand_off(question, "low intent confidence (0.3)" if i else "visitor asked for a person")
    s.exchange(s.conversation(at(2, 15)), "Do you ship to Canada?", at(2, 15), fallback=True)


def test_a_manager_sees_drawn_charts_and_follows_a_bar_to_its_conversations(browser, live_server_url):
    tenant = TenantFactory(name="Alpha Outdoor", slug="alpha")
    services.agent_add(tenant, "mia", password=PASSWORD, role="manager", name="Mia Manager")
    seed_week(tenant)
    page = new_page(browser, width=1440, height=900)
    refused = []  # the console's Content-Security-Policy allows nothing inline: Chart.js must live with it
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        log_in(page, live_server_url, "mia")
        page.locator(".topnav a", has_text="Insights").click()
        expect(page).to_have_url(re.compile(r"/console/insights/$"))
        page.goto(f"{live_server_url}/console/insights/?{PERIOD_QUERY}")

        for name in CHARTS:
            canvas = page.locator(f'canvas[data-chart="{name}"]')
            expect(canvas).to_have_attribute("data-drawn", "true")
            assert canvas.evaluate(DRAWN), f"the {name} chart is blank"
        conversations = page.locator('canvas[data-chart="conversations"]').evaluate(
            "c => Chart.getChart(c).data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))")
        assert sum(conversations) == 14
        assert page.evaluate("document.querySelector('script[src$=\"chart.umd.min.js\"]').src").startswith(
            live_server_url)
        expect(page.locator('[data-kpi="conversations"] .kpi-value')).to_have_text("14")
        page.screenshot(path=str(test_widget.ARTIFACTS / "insights.png"), full_page=True)

        # A click on the first bar of the intents chart lists that intent's conversations of the week.
        intents = page.locator('canvas[data-chart="intents"]')
        intents.scroll_into_view_if_needed()
        point = intents.evaluate(FIRST_BAR)
        page.mouse.click(point["x"], point["y"])
        expect(page).to_have_url(re.compile(r"/console/review/\?"))
        query = page.url.split("?", 1)[1]
        assert sorted(query.split("&")) == sorted(
            ["store=alpha", "date_from=2025-03-03", "date_to=2025-03-09", "intent=shipping"])

        # What to fix first: ranked suggestions with their evidence.
        page.goto(f"{live_server_url}/console/insights/fix/?{PERIOD_QUERY}")
        expect(page.locator(".fix").first).to_be_visible()
        expect(page.locator('.fix[data-kind="intent"]').first).to_contain_text("refund")
        expect(page.locator('.fix[data-kind="knowledge"]')).to_contain_text("How long does shipping take?")
        screenshot(page, "insights-fix.png")
        assert page.script_errors == [] and refused == []
    finally:
        page.context.close()


def test_an_agent_gets_no_insights_link_and_a_refusal(browser, live_server_url):
    tenant = TenantFactory(name="Alpha Outdoor", slug="alpha")
    services.agent_add(tenant, "ada", password=PASSWORD, name="Ada Agent")
    page = new_page(browser)
    try:
        log_in(page, live_server_url, "ada")
        expect(page.locator(".topnav a", has_text="Insights")).to_have_count(0)
        response = page.goto(f"{live_server_url}/console/insights/")
        assert response.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
    finally:
        page.context.close()

"""A store's content in each of its languages, in headless Chromium against the real server: a manager writes an
entry's Spanish version beside the English one, and an agent's /shortcut inserts a canned reply's Spanish version
into a Spanish conversation.

Screenshots go to test-artifacts/ (gitignored).
"""
import re

import pytest

from chatbot.conversations import services
from chatbot.models import CannedReply, Conversation
from tests.browser import test_console, test_widget
from tests.browser.test_console import agent, log_in
from tests.browser.test_widget import screenshot
from tests.conftest import needs_services
from tests.factories import KnowledgeEntryFactory, TenantFactory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

browser, pages = test_widget.browser, test_console.pages

SPANISH_QUESTION = "¿Cuánto tarda el envío?"
SPANISH_ANSWER = "El envío estándar tarda de 3 a 5 días hábiles."
THANKS, GRACIAS = "Thanks for writing to us! Let me look into it.", "¡Gracias por escribirnos! Lo reviso ahora mismo."


@pytest.fixture
def store(live_server_url):
    return TenantFactory(slug="northwind", name="Northwind Outfitters", languages=["en", "es", "de", "fr"],
                         allowed_origins=[live_server_url])


# The elements that stick out of the window on the right, for the failure's message.
STICKING_OUT = """() => Array.from(document.querySelectorAll("body *"))
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 8).map(el => el.tagName.toLowerCase() + "." + el.className + " " + Math.round(el.getBoundingClientRect().right))"""


def no_sideways_scroll(page) -> None:
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"the page scrolls sideways ({width} px in {viewport}): {page.evaluate(STICKING_OUT)}"


def test_manager_writes_an_entrys_spanish_version_side_by_side(pages, store, live_server_url):
    agent(store, "mia", "Mia Manager", role="manager")
    entry = KnowledgeEntryFactory(tenant=store, question="How long does shipping take?", category="shipping",
                                  answer="Standard shipping takes 3 to 5 business days.",
                                  translations={"de": {"question": "Wie lange dauert der Versand?",
                                                       "answer": "Der Versand dauert 3 bis 5 Werktage."}})
    KnowledgeEntryFactory(tenant=store, question="What is your return policy?", category="returns",
                          answer="You can return unused items within 30 days.")
    console = pages()
    log_in(console, live_server_url, "mia")
    console.locator(".topnav a", has_text="Knowledge").click()
    expect(console).to_have_url(re.compile(r"/console/knowledge/$"))
    row = console.locator(f'.knowledge-row[data-id="{entry.id}"]')
    expect(row.locator('[data-lang="es"]')).to_have_attribute("data-written", "false")
    screenshot(console, "knowledge-list.png")
    console.screenshot(path="/tmp/knowledge_list.png")
    console.locator('select[name="missing"]').select_option("es")
    console.get_by_role("button", name="Filter").click()
    expect(console.locator(".knowledge-row")).to_have_count(2)
    row.get_by_role("link", name="Edit").click()

    # One column per language, the main one first, side by side in a wide window.
    columns = console.locator(".version")
    expect(columns).to_have_count(4)
    assert [c.get_attribute("data-lang") for c in columns.all()] == ["en", "es", "de", "fr"]
    tops = {round(c.bounding_box()["y"]) for c in columns.all()}
    assert len(tops) == 1, f"the columns are not side by side: {tops}"
    expect(console.locator("#id_question_de")).to_have_value("Wie lange dauert der Versand?")
    expect(console.locator("#id_question_es")).to_have_value("")

    # Half a version is refused, on its field, and what was typed stays.
    console.locator("#id_question_es").fill(SPANISH_QUESTION)
    console.locator(".card-head").get_by_role("button", name="Save").click()
    expect(console.locator('.version[data-lang="es"] .field-error')).to_have_text(
        "Write the Español answer too, or clear the Español question to remove this version.")
    expect(console.locator("#id_question_es")).to_have_value(SPANISH_QUESTION)
    entry.refresh_from_db()
    assert "es" not in entry.translations

    console.locator("#id_answer_es").fill(SPANISH_ANSWER)
    screenshot(console, "knowledge-edit.png")
    console.screenshot(path="/tmp/knowledge_edit.png", full_page=True)
    console.locator(".card-head").get_by_role("button", name="Save").click()
    expect(console.locator(".alert-success")).to_have_text("Saved “How long does shipping take?”.")
    expect(console).to_have_url(re.compile(r"/console/knowledge/\?tenant=northwind&missing=es$"))
    expect(console.locator(".knowledge-row")).to_have_count(1)  # it no longer misses Spanish
    entry.refresh_from_db()
    assert entry.translations["es"] == {"question": SPANISH_QUESTION, "answer": SPANISH_ANSWER}
    assert entry.translations["de"]["question"] == "Wie lange dauert der Versand?"  # the others are kept

    # In a narrow window the columns wrap under each other, and nothing scrolls sideways.
    console.goto(f"{live_server_url}/console/knowledge/{entry.id}/")
    expect(console.locator("#id_answer_es")).to_have_value(SPANISH_ANSWER)
    console.set_viewport_size({"width": 760, "height": 900})
    boxes = [c.bounding_box() for c in console.locator(".version").all()]
    assert boxes[-1]["y"] > boxes[0]["y"], "the columns should wrap in a narrow window"
    assert all(box["width"] >= 280 for box in boxes), "a column too narrow to write in"
    no_sideways_scroll(console)
    screenshot(console, "knowledge-edit-narrow.png")
    console.screenshot(path="/tmp/knowledge_edit_narrow.png", full_page=True)

    # The store's texts, side by side too.
    console.set_viewport_size({"width": 1440, "height": 900})
    console.goto(f"{live_server_url}/console/texts/")
    console.locator("#id_greeting_es").fill("¡Hola! ¿En qué podemos ayudarte?")
    console.get_by_text("Answer in the main language, with a line saying so").click()
    console.screenshot(path="/tmp/texts.png", full_page=True)
    screenshot(console, "texts.png")
    console.get_by_role("button", name="Save texts").click()
    expect(console.locator(".alert-success")).to_have_text("Saved Northwind Outfitters's texts.")
    store.refresh_from_db()
    assert store.translations == {"es": {"greeting": "¡Hola! ¿En qué podemos ayudarte?"}}
    assert store.untranslated == "main_language"
    console.set_viewport_size({"width": 760, "height": 900})
    no_sideways_scroll(console)
    console.screenshot(path="/tmp/texts_narrow.png", full_page=True)

    # The list and a canned reply's versions fit the narrowest console window too.
    reply = CannedReply.objects.create(tenant=store, shortcut="thanks", text=THANKS, translations={"es": GRACIAS})
    console.set_viewport_size({"width": 900, "height": 800})
    for url in ("/console/knowledge/", f"/console/canned/{reply.id}/", "/console/canned/"):
        console.goto(live_server_url + url)
        no_sideways_scroll(console)
    expect(console.locator(f'[data-shortcut="thanks"] .badge-lang[data-lang="es"]')).to_have_text("ES")
    console.goto(f"{live_server_url}/console/canned/{reply.id}/")
    expect(console.locator("#id_text_es")).to_have_value(GRACIAS)
    console.screenshot(path="/tmp/canned_edit.png", full_page=True)
    assert console.script_errors == []


def test_a_shortcut_inserts_the_canned_replys_spanish_version_in_a_spanish_conversation(pages, store,
                                                                                           live_server_url):
    agent(store, "alice", "Alice Agent")
    CannedReply.objects.create(tenant=store, shortcut="thanks", text=THANKS, translations={"es": GRACIAS})
    CannedReply.objects.create(tenant=store, shortcut="tracking", text="Here is your tracking link.")
    session = services.visitor_session_open(store, None)
    services.message_receive(session.conversation.id, "Hola, ¿dónde está mi pedido? Lo compré hace una semana.",
                             "v-1")
    Conversation.objects.filter(pk=session.conversation.id).update(language="es")
    console = pages()
    log_in(console, live_server_url, "alice")
    console.locator(f'.conv[data-id="{session.conversation.id}"]').click()
    expect(console.locator("#transcript .msg--visitor")).to_have_count(1)

    composer = console.locator("#composer-input")
    composer.press_sequentially("/t")
    options = console.locator("#canned-menu .canned-option")
    expect(options).to_have_count(2)
    # The menu says which language each inserts: Spanish where written, else the main text, marked.
    expect(options.nth(0).locator("span").first).to_have_text(GRACIAS)
    expect(options.nth(0).locator(".canned-lang")).to_have_text("ES")
    expect(options.nth(1).locator(".canned-lang-fallback")).to_have_text("EN")
    screenshot(console, "console-canned-spanish.png")
    composer.press("Enter")
    expect(composer).to_have_value(GRACIAS)

    composer.fill("")
    composer.press_sequentially("/track")
    composer.press("Enter")
    expect(composer).to_have_value("Here is your tracking link.")  # no Spanish version: the main text
    assert console.script_errors == []

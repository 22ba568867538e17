"""widget.js speaks the page's language: the tag's data-lang, else <html lang>, else the browser's
languages, else English, matched on the primary subtag. Headless Chromium against the real server.

The store's own texts (greeting, the notice when nobody is online) come from the server as the store
wrote them; only the widget's words are checked here (their table: tests/chatbot/test_widget_strings.py).
"""
import pytest

from chatbot.conversations import ownership
from tests.browser.test_widget import (  # noqa: F401 - fixtures
    SOCKET_SPY, acked, agent_named, browser, conversation_of, demo_store, expect_status, off_loop, open_chat,
    other_store, receive, screenshot, send, sent_frames,
)
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def new_page(browser):
    """A page in a fresh context whose browser speaks `locale` (navigator.language and languages)."""
    contexts = []

    def make(locale: str = "en-US"):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
        context.add_init_script(SOCKET_SPY)
        contexts.append(context)
        page = context.new_page()
        page.script_errors = []
        page.on("pageerror", lambda error: page.script_errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()


def store_page(other_store, live_server_url, key: str, html_lang: str | None, data_lang: str | None) -> str:
    """Another shop's page with the given <html lang> and data-lang on the tag (None: left out)."""
    lang = f' lang="{html_lang}"' if html_lang is not None else ""
    data = f' data-lang="{data_lang}"' if data_lang is not None else ""
    other_store.html = (f"<!doctype html><html{lang}><title>Another shop</title><h1>Another shop</h1>"
                        f'<script src="{live_server_url}/static/chatbot/widget.js" data-key="{key}"{data} async>'
                        "</script></html>")
    return f"{other_store.origin}/shop"


def shown_in(page, lang: str) -> None:
    """The widget chose `lang`: its panel says so, and so does the socket's address."""
    expect(page.locator(".nwcb-panel")).to_have_attribute("lang", lang)
    expect(page.locator(".nwcb-root")).to_have_attribute("lang", lang)
    assert f"&lang={lang}" in page.evaluate("window.__sockets.at(-1).url")


def test_a_spanish_page_gets_a_spanish_widget(new_page, demo_store, live_server_url):
    # A Spanish shop writes its own texts in Spanish; the widget's words come from its table.
    demo_store.greeting = "\u00a1Hola! Soy el asistente de Northwind. Preg\u00fantame por pedidos, env\u00edos o devoluciones."
    demo_store.no_agent_text = "Ahora mismo no hay nadie del equipo conectado."
    demo_store.save()
    agent = agent_named(demo_store, online=False)
    page = new_page("en-US")  # the page's language wins over the browser's
    open_chat(page, f"{live_server_url}/demo/?lang=es")
    assert page.evaluate("document.documentElement.lang") == "es"
    shown_in(page, "es")
    input_box = page.locator(".nwcb-input")
    expect(input_box).to_have_attribute("placeholder", "Escribe tu mensaje\u2026")
    expect(page.locator(".nwcb-send")).to_have_attribute("aria-label", "Enviar mensaje")
    expect(page.locator("label[for=nwcb-input]")).to_have_text("Tu mensaje")
    expect(page.locator(".nwcb-bubble")).to_have_attribute("aria-label", "Cerrar chat")
    expect(page.locator(".nwcb-close")).to_have_attribute("aria-label", "Cerrar chat")
    expect_status(page, "bot", "En l\u00ednea")

    send(page, "\u00bfPuede llamarme alguien del equipo?")
    expect(acked(page, "llamarme")).to_have_count(1)
    conversation_id = conversation_of(page, demo_store)
    off_loop(ownership.conversation_hand_off, conversation_id, "visitor asked for a person", code="asked_for_person")
    expect_status(page, "waiting", "Nuestro equipo no est\u00e1 disponible")
    form = page.locator(".nwcb-contact")
    expect(form).to_be_visible()
    expect(form.locator(".nwcb-card-title")).to_have_text("Nuestro equipo no est\u00e1 disponible ahora")
    expect(form.locator(".nwcb-card-text")).to_have_text("D\u00e9janos tu correo y te responderemos.")
    expect(form.locator("label[for=nwcb-contact-input]")).to_have_text("Tu correo electr\u00f3nico")
    expect(form.locator(".nwcb-contact-transcript")).to_have_text("Env\u00edame tambi\u00e9n una copia de este chat por correo")
    expect(form.locator(".nwcb-contact-input")).to_have_attribute("placeholder", "tu@ejemplo.com")
    expect(form.locator("button[type=submit]")).to_have_text("Enviar")
    screenshot(page, "widget-es.png")

    form.locator("button[type=submit]").click()  # nothing typed: said before anything is sent
    expect(form.locator(".nwcb-card-error")).to_have_text("Escribe tu correo electr\u00f3nico.")
    form.locator(".nwcb-contact-input").fill("nope")
    form.locator("button[type=submit]").click()  # the server refuses it: invalid_email
    expect(form.locator(".nwcb-card-error")).to_have_text(
        "Esa direcci\u00f3n de correo no parece v\u00e1lida. Rev\u00edsala y vuelve a intentarlo.")
    form.locator(".nwcb-contact-input").fill("ana@example.com")
    form.locator(".nwcb-contact-input").press("Enter")
    expect(form).to_have_attribute("data-done", "true")
    expect(form.locator(".nwcb-card-title")).to_have_text("\u00a1Gracias!")
    expect(form.locator(".nwcb-card-text")).to_have_text("Te responderemos en ana@example.com.")

    receive(page, {"type": "error", "code": "rate_limited", "retry_after": 1})  # the "a little fast" notice
    expect(page.locator(".nwcb-error")).to_have_text(
        "Est\u00e1s enviando mensajes un poco r\u00e1pido. Enviaremos el tuyo en un momento.")

    off_loop(ownership.conversation_resolve, conversation_id, agent=agent)
    expect_status(page, "resolved", "Conversaci\u00f3n resuelta")
    csat = page.locator(".nwcb-csat")
    expect(csat.locator(".nwcb-card-title")).to_have_text("\u00bfQu\u00e9 tal te atendimos?")
    expect(csat.locator('button[data-csat="1"]')).to_have_attribute("aria-label", "Muy mala (1 de 5)")
    expect(csat.locator('button[data-csat="5"]')).to_have_attribute("title", "Excelente")
    csat.locator('button[data-csat="4"]').click()
    expect(csat.locator(".nwcb-card-title")).to_have_text("\u00a1Gracias por tu opini\u00f3n!")
    expect(csat.locator(".nwcb-card-text")).to_have_text("Valoraste esta conversaci\u00f3n con 4 de 5.")
    assert sent_frames(page, "csat") == [{"type": "csat", "rating": 4}]
    assert page.script_errors == []


def test_data_lang_wins_over_the_page_lang(new_page, demo_store, live_server_url, other_store):
    page = new_page("fr-FR")
    open_chat(page, store_page(other_store, live_server_url, demo_store.public_key, html_lang="es", data_lang="de"))
    shown_in(page, "de")
    expect(page.locator(".nwcb-input")).to_have_attribute("placeholder", "Nachricht eingeben\u2026")
    expect(page.locator(".nwcb-send")).to_have_attribute("aria-label", "Nachricht senden")
    expect_status(page, "bot", "Online")
    receive(page, {"type": "status", "status": "human", "agents_online": True, "agent": "Jonas"})
    expect_status(page, "human", "Im Chat mit Jonas")
    assert page.script_errors == []


def test_a_regional_tag_maps_to_its_language(new_page, demo_store, live_server_url):
    page = new_page("en-US")
    open_chat(page, f"{live_server_url}/demo/?lang=pt-BR")
    shown_in(page, "pt")
    expect(page.locator(".nwcb-input")).to_have_attribute("placeholder", "Digite sua mensagem\u2026")
    expect(page.locator(".nwcb-send")).to_have_attribute("aria-label", "Enviar mensagem")
    receive(page, {"type": "status", "status": "waiting", "agents_online": False})
    expect_status(page, "waiting", "Nossa equipe n\u00e3o est\u00e1 dispon\u00edvel")
    expect(page.locator(".nwcb-contact .nwcb-card-text")).to_have_text("Deixe seu e-mail e entraremos em contato.")
    assert page.script_errors == []


def test_without_a_page_language_the_browser_s_is_used(new_page, demo_store, live_server_url, other_store):
    page = new_page("fr-CA")
    open_chat(page, store_page(other_store, live_server_url, demo_store.public_key, html_lang=None, data_lang=None))
    shown_in(page, "fr")
    expect(page.locator(".nwcb-input")).to_have_attribute("placeholder", "\u00c9crivez votre message\u2026")
    expect_status(page, "bot", "En ligne")


def test_a_language_the_widget_does_not_speak_falls_back_to_english(new_page, demo_store, live_server_url,
                                                                    other_store):
    page = new_page("ja-JP")
    open_chat(page, store_page(other_store, live_server_url, demo_store.public_key, html_lang="ja", data_lang="ja"))
    assert page.evaluate("navigator.language") == "ja-JP"
    shown_in(page, "en")
    expect(page.locator(".nwcb-input")).to_have_attribute("placeholder", "Type your message\u2026")
    expect(page.locator(".nwcb-send")).to_have_attribute("aria-label", "Send message")
    expect_status(page, "bot", "Online")
    receive(page, {"type": "status", "status": "waiting", "agents_online": False})
    expect(page.locator(".nwcb-contact .nwcb-card-title")).to_have_text("Our team is away right now")
    assert page.script_errors == []

"""widget.js never loops on a message the server cannot take: refused for good, it is shown as not
sent, with the reason, and leaves the outbox; refused for now (rate_limited, unavailable), it waits
and is sent again. Headless Chromium against the real server; a socket spy can hold back a message
frame (so the test plays the server's answer to it) or drop the socket when one is sent (a server
that dies on it)."""
import json

import pytest

from chatbot.models import Message
from tests.browser.test_widget import (  # noqa: F401 - fixtures
    acked, browser, demo_store, open_chat, other_store, send, sent_frames, wait_until,
)
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

# The socket spy of test_widget, plus rules on message frames whose text contains a marker:
# window.__hold[marker] > 0 holds back that many sends (the server never sees them), and
# window.__kill[marker] closes the socket instead of sending (the server dies on it).
SOCKET_SPY = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__sent = [];
  window.__hold = {};
  window.__kill = {};
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__sockets.push(ws);
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      window.__sent.push(data);
      for (const marker of Object.keys(window.__kill)) {
        if (data.includes(marker)) { ws.close(); return; }
      }
      for (const marker of Object.keys(window.__hold)) {
        if (data.includes(marker) && window.__hold[marker] > 0) { window.__hold[marker] -= 1; return; }
      }
      return send(data);
    };
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.__serverSays = (frame) => window.__sockets.at(-1).dispatchEvent(
    new MessageEvent("message", {data: JSON.stringify(frame)}));
})();
"""


@pytest.fixture
def context(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(SOCKET_SPY)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    return page


def outbox(page, tenant) -> list[dict]:
    return json.loads(page.evaluate(f"localStorage.getItem('nwcb:outbox:{tenant.public_key}')") or "[]")


def sends_of(page, marker: str) -> list[dict]:
    return [f for f in sent_frames(page, "message") if marker in f["text"]]


def failed(page, marker: str):
    return page.locator(".nwcb-msg--failed", has=page.locator(".nwcb-text", has_text=marker))


@pytest.mark.parametrize("poison", ["nul \u0000 char", "lone \ud800 surrogate"])
def test_a_message_the_server_refuses_for_good_is_shown_not_sent_and_never_resent(page, demo_store, live_server_url,
                                                                                   poison):
    open_chat(page, f"{live_server_url}/demo/")
    page.locator(".nwcb-input").evaluate("(el, text) => { el.value = text; }", f"poisoned {poison}")
    page.locator(".nwcb-input").press("Enter")
    bubble = failed(page, "poisoned")
    expect(bubble).to_have_count(1)
    expect(bubble.locator(".nwcb-meta")).to_have_text("Not sent: the text can't be sent")
    assert outbox(page, demo_store) == []
    # The visitor goes on chatting; nothing loops: one socket, the poison sent once.
    send(page, "and a normal message")
    expect(acked(page, "and a normal message")).to_have_count(1)
    page.wait_for_timeout(3000)
    assert page.evaluate("window.__sockets.length") == 1
    assert len(sends_of(page, "poisoned")) == 1
    # Nor after a reconnect or a reload.
    page.evaluate("window.__sockets.at(-1).close()")
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online", timeout=15_000)
    page.reload()
    page.locator(".nwcb-bubble").click()
    expect(acked(page, "and a normal message")).to_have_count(1)
    page.wait_for_timeout(1500)
    assert sends_of(page, "poisoned") == []  # the spy's log starts afresh with the page
    assert list(Message.objects.filter(sender="visitor").values_list("text", flat=True)) == ["and a normal message"]
    assert page.script_errors == []


def test_an_error_code_the_widget_does_not_know_refuses_the_message_it_names(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    page.evaluate("window.__hold['#odd'] = 1")
    send(page, "a message #odd")
    wait_until(lambda: sends_of(page, "#odd"), what="the message frame")
    client_id = sends_of(page, "#odd")[0]["client_id"]
    page.evaluate("(id) => window.__serverSays({type: 'error', code: 'brand_new_code', client_id: id,"
                  " detail: 'Refused for a reason of the future.'})", client_id)
    expect(failed(page, "#odd").locator(".nwcb-meta")).to_have_text("Not sent: Refused for a reason of the future.")
    assert outbox(page, demo_store) == []
    page.evaluate("window.__sockets.at(-1).close()")  # reconnect: the outbox is flushed, without it
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online", timeout=15_000)
    send(page, "next one")
    expect(acked(page, "next one")).to_have_count(1)
    assert len(sends_of(page, "#odd")) == 1
    assert not Message.objects.filter(text__contains="#odd").exists()


@pytest.mark.parametrize("code", ["unavailable", "rate_limited"])
def test_a_message_refused_for_now_waits_and_is_sent_again_once(page, demo_store, live_server_url, code):
    open_chat(page, f"{live_server_url}/demo/")
    page.evaluate("window.__hold['#later'] = 1")
    send(page, "try me #later")
    wait_until(lambda: sends_of(page, "#later"), what="the message frame")
    client_id = sends_of(page, "#later")[0]["client_id"]
    page.evaluate("([id, code]) => window.__serverSays({type: 'error', code: code, client_id: id, retry_after: 1,"
                  " detail: 'Not now.'})", [client_id, code])
    pending = page.locator(".nwcb-msg--pending", has=page.locator(".nwcb-text", has_text="#later"))
    expect(pending.locator(".nwcb-meta")).to_have_text("Waiting to send\u2026")
    assert [i["client_id"] for i in outbox(page, demo_store)] == [client_id]
    expect(acked(page, "#later")).to_have_count(1, timeout=10_000)
    assert [f["client_id"] for f in sends_of(page, "#later")] == [client_id, client_id]
    assert Message.objects.filter(client_id=client_id).count() == 1
    assert outbox(page, demo_store) == []


def test_a_message_that_kills_the_socket_every_time_stops_being_resent(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    page.evaluate("window.__kill['#boom'] = true")
    send(page, "crash the server #boom")
    bubble = failed(page, "#boom")
    expect(bubble.locator(".nwcb-meta")).to_have_text("Not sent: the chat couldn't deliver it", timeout=30_000)
    expect(page.locator(".nwcb-status")).to_have_attribute("data-state", "online", timeout=15_000)
    sockets = page.evaluate("window.__sockets.length")
    page.wait_for_timeout(4000)
    assert page.evaluate("window.__sockets.length") == sockets == 4  # 3 lost, then one that stays
    assert len(sends_of(page, "#boom")) == 3
    assert outbox(page, demo_store) == []
    page.evaluate("delete window.__kill['#boom']")
    send(page, "still here")
    expect(acked(page, "still here")).to_have_count(1)

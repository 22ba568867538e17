"""widget.js marks a message not sent (or waiting) only when an error names its client_id: an error about
another frame (a rate-limited resume or typing frame) leaves the messages in flight alone."""
import pytest

from chatbot.models import Message
from tests.browser.test_widget import (  # noqa: F401 - fixtures
    acked, browser, demo_store, open_chat, other_store, send, wait_until,
)
from tests.browser.test_widget_refusal import context, failed, outbox, page, sends_of  # noqa: F401
from tests.conftest import needs_services

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]


def test_errors_naming_no_message_leave_the_messages_in_flight_alone(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    page.evaluate("window.__hold['#inflight'] = 1")  # the server never sees its first send: no ack comes
    send(page, "waiting for its ack #inflight")
    wait_until(lambda: sends_of(page, "#inflight"), what="the message frame")
    client_id = sends_of(page, "#inflight")[0]["client_id"]
    for code in ("rate_limited", "invalid_text", "frame_too_large"):
        page.evaluate("(code) => window.__serverSays({type: 'error', code: code, detail: 'About a resume frame.'})",
                      code)
    page.wait_for_timeout(500)
    expect(failed(page, "#inflight")).to_have_count(0)
    pending = page.locator(".nwcb-msg--pending", has=page.locator(".nwcb-text", has_text="#inflight"))
    expect(pending.locator(".nwcb-meta")).not_to_have_text("Waiting to send\u2026")
    assert [i["client_id"] for i in outbox(page, demo_store)] == [client_id]
    # Its ack timer sends it again (same client_id) and it is stored once.
    expect(acked(page, "#inflight")).to_have_count(1, timeout=40_000)
    assert {f["client_id"] for f in sends_of(page, "#inflight")} == {client_id}
    assert Message.objects.filter(client_id=client_id).count() == 1
    assert outbox(page, demo_store) == []
    assert page.script_errors == []

"""widget.js resumes a long history page by page: after each `resumed` frame that says `more` it asks for
the next page from the page's `last_seq`, and it moves past agents' notes (seqs it will never see) instead
of asking for them again."""
import pytest

from chatbot.models import Conversation, Message
from tests.browser.test_widget import (  # noqa: F401 - fixtures
    acked, browser, context, demo_store, open_chat, other_store, page, send, sent_frames, wait_until,
)
from tests.conftest import needs_services
from tests.factories import MessageFactory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]


def test_a_reconnect_resumes_a_long_history_page_by_page_and_past_notes(page, demo_store, live_server_url):
    open_chat(page, f"{live_server_url}/demo/")
    send(page, "before the long history")
    expect(acked(page, "before the long history")).to_have_count(1)
    conversation = Conversation.objects.get(tenant=demo_store)
    # Written while the widget does not listen (as by a server that restarted): seqs 2..251, 150 a note.
    Message.objects.bulk_create([
        MessageFactory.build(conversation=conversation, seq=seq, sender="bot", text=f"reply {seq}",
                             private=seq == 150)
        for seq in range(2, 252)])
    Conversation.objects.filter(pk=conversation.id).update(last_seq=251)

    page.evaluate("window.__sockets.at(-1).close()")
    expect(page.locator(".nwcb-msg[data-id]")).to_have_count(250, timeout=15_000)
    wait_until(lambda: len(sent_frames(page, "resume")) >= 3, what="three pages asked for")
    page.wait_for_timeout(2500)  # longer than the gap-fill delay: the note's seq is not asked for again
    assert [f["after_seq"] for f in sent_frames(page, "resume")] == [1, 101, 202]
    seqs = page.locator(".nwcb-msg[data-id]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == [seq for seq in range(1, 252) if seq != 150]
    assert page.evaluate("window.__sockets.length") == 2
    assert page.script_errors == []

"""The widget's `resume`, bounded: a long history comes in pages closed by a `resumed` frame, and one socket
may start only SOCKET_REPLAYS replays per window (the pages that continue one are free)."""
import uuid

import pytest
from channels.db import database_sync_to_async

from chatbot.conversations import services
from chatbot.models import Conversation, Message
from chatbot.sockets import ratelimit
from tests.chatbot.sockets import drain, widget_socket
from tests.factories import MessageFactory, TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


@pytest.fixture(autouse=True)
def own_counters(settings):
    """Rate-limit counters of this test's own, and the shipped replay settings whatever the environment says."""
    settings.RATE_LIMIT_PREFIX = f"test-resume-{uuid.uuid4().hex[:10]}"
    settings.SOCKET_HISTORY_PAGE = 100
    settings.SOCKET_REPLAYS = [5, 60]
    ratelimit.reset_memory()


def history(count: int, notes: tuple[int, ...] = ()) -> tuple[object, str]:
    """A tenant and the token of a visitor whose conversation holds `count` messages (seqs in `notes` are
    agents' private notes, which the visitor never sees)."""
    tenant = TenantFactory(allowed_origins=["https://shop.example"])
    opened = services.visitor_session_open(tenant, None)
    conversation = opened.conversation
    Message.objects.bulk_create([
        MessageFactory.build(conversation=conversation, seq=seq, sender="bot", text=f"reply {seq}",
                             private=seq in notes)
        for seq in range(1, count + 1)])
    Conversation.objects.filter(pk=conversation.id).update(last_seq=count)
    return tenant, opened.visitor.token


async def resume(comm, after_seq) -> list[dict]:
    await comm.send_json_to({"type": "resume", "after_seq": after_seq})
    return await drain(comm)


def seqs(frames: list[dict]) -> list[int]:
    return [f["message"]["seq"] for f in frames if f["type"] == "message"]


def closing(frames: list[dict]) -> dict:
    """The `resumed` frame that closes a page (and is the last frame of it)."""
    assert frames and frames[-1]["type"] == "resumed", frames
    assert [f["type"] for f in frames[:-1]] == ["message"] * (len(frames) - 1), frames
    return frames[-1]


async def test_a_hundred_resumes_on_one_socket_replay_at_most_the_limit_times_a_page(settings):
    """The report's case: 112 messages, 100 resume frames from the start; 3,360 message frames before."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "visitor_resumes": [1000, 60]}  # the socket's own limit bites
    tenant, token = await db(history)(112)
    comm, _ = await widget_socket(tenant, visitor=token)
    for _ in range(100):
        await comm.send_json_to({"type": "resume", "after_seq": 0})
    frames = await drain(comm, quiet=1.0)
    messages = [f for f in frames if f["type"] == "message"]
    assert len(messages) <= 5 * 100
    assert len(messages) == 5 * 100  # five replays of one page each, nothing else
    pages = [f for f in frames if f["type"] == "resumed"]
    assert pages == [{"type": "resumed", "after_seq": 0, "last_seq": 100, "more": True}] * 5
    refused = [f for f in frames if f["type"] == "error"]
    assert len(refused) == 95 and {f["code"] for f in refused} == {"rate_limited"}
    assert all(f["retry_after"] >= 1 and "client_id" not in f for f in refused)
    await comm.disconnect()


async def test_a_long_history_arrives_whole_in_pages_in_order():
    tenant, token = await db(history)(250, notes=(150,))
    comm, _ = await widget_socket(tenant, visitor=token)
    received, after = [], 0
    pages = []
    while True:
        frames = await resume(comm, after)
        page = closing(frames)
        pages.append(page)
        received += seqs(frames)
        if not page["more"]:
            break
        after = page["last_seq"]
    assert received == [seq for seq in range(1, 251) if seq != 150]  # whole, in order, once, no note
    assert pages == [
        {"type": "resumed", "after_seq": 0, "last_seq": 100, "more": True},
        {"type": "resumed", "after_seq": 100, "last_seq": 201, "more": True},  # past the note: 100 messages
        {"type": "resumed", "after_seq": 201, "last_seq": 250, "more": False},
    ]
    await comm.disconnect()


async def test_a_page_holds_at_most_socket_history_page_messages(settings):
    settings.SOCKET_HISTORY_PAGE = 10
    tenant, token = await db(history)(25)
    comm, _ = await widget_socket(tenant, visitor=token)
    frames = await resume(comm, 3)
    assert seqs(frames) == list(range(4, 14))
    assert closing(frames) == {"type": "resumed", "after_seq": 3, "last_seq": 13, "more": True}
    frames = await resume(comm, 20)
    assert seqs(frames) == list(range(21, 26))
    assert closing(frames) == {"type": "resumed", "after_seq": 20, "last_seq": 25, "more": False}
    frames = await resume(comm, 25)  # nothing after: the page is empty and ends where it began
    assert frames == [{"type": "resumed", "after_seq": 25, "last_seq": 25, "more": False}]
    await comm.disconnect()


async def test_a_replay_over_the_socket_limit_is_refused_with_rate_limited_and_replays_nothing(settings):
    settings.SOCKET_REPLAYS = [2, 60]
    tenant, token = await db(history)(3)
    comm, _ = await widget_socket(tenant, visitor=token)
    for _ in range(2):
        assert seqs(await resume(comm, 0)) == [1, 2, 3]
    frames = await resume(comm, 1)
    assert len(frames) == 1, frames
    assert frames[0]["type"] == "error" and frames[0]["code"] == "rate_limited"
    assert 1 <= frames[0]["retry_after"] <= 60 and "client_id" not in frames[0]
    await comm.disconnect()
    # The limit is the socket's: a new socket may replay again (the visitor's own limit still applies).
    comm, _ = await widget_socket(tenant, visitor=token)
    assert seqs(await resume(comm, 0)) == [1, 2, 3]
    await comm.disconnect()


async def test_continuation_pages_are_not_refused_but_a_new_replay_is(settings):
    settings.SOCKET_HISTORY_PAGE = 10
    settings.SOCKET_REPLAYS = [1, 60]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "visitor_resumes": [1, 60]}
    tenant, token = await db(history)(35)
    comm, _ = await widget_socket(tenant, visitor=token)
    received, after = [], 0
    for _ in range(4):  # one replay, four pages: counted once against each limit
        frames = await resume(comm, after)
        received += seqs(frames)
        after = closing(frames)["last_seq"]
    assert received == list(range(1, 36)) and closing(frames)["more"] is False
    for again in (35, 0):  # the last page said no more: asking again starts a new replay
        frames = await resume(comm, again)
        assert [(f["type"], f["code"]) for f in frames] == [("error", "rate_limited")]
    await comm.disconnect()


async def test_only_the_page_after_the_last_one_continues_it(settings):
    settings.SOCKET_HISTORY_PAGE = 10
    settings.SOCKET_REPLAYS = [1, 60]
    tenant, token = await db(history)(35)
    comm, _ = await widget_socket(tenant, visitor=token)
    assert closing(await resume(comm, 0))["last_seq"] == 10
    for elsewhere in (5, 11, 20, "10", True):  # not the seq the page ended at (nor a look-alike of it)
        frames = await resume(comm, elsewhere)
        assert [f["code"] for f in frames] == ["rate_limited"], (elsewhere, frames)
    assert seqs(await resume(comm, 10)) == list(range(11, 21))
    await comm.disconnect()


async def test_a_resume_before_the_first_message_replays_nothing_and_says_so():
    tenant = await db(TenantFactory)(allowed_origins=["https://shop.example"])
    comm, session = await widget_socket(tenant, visitor="v_not-stored-yet")
    assert session["conversation"] is None
    assert await resume(comm, 0) == [{"type": "resumed", "after_seq": 0, "last_seq": 0, "more": False}]
    await comm.disconnect()

"""chatbot.sockets.base: the one error frame both sockets send, the client_id it echoes, the replay budget."""
import pytest

from chatbot.conversations.identity import IdentityRefused
from chatbot.errors import NotFound, RateLimited, ServiceError
from chatbot.sockets import base, ratelimit
from chatbot.sockets.agent import AgentConsumer
from chatbot.sockets.widget import WidgetConsumer
from tests.chatbot.sockets import agent_socket, widget_socket
from tests.factories import TenantFactory, agent_of


def test_both_sockets_read_and_refuse_frames_through_the_one_base():
    assert issubclass(WidgetConsumer, base.SocketConsumer) and issubclass(AgentConsumer, base.SocketConsumer)
    for consumer in (WidgetConsumer, AgentConsumer):
        assert "receive" not in vars(consumer) and "send_error" not in vars(consumer)


def test_any_error_of_the_family_becomes_a_frame_with_its_code_and_detail():
    class LaterError(ServiceError):  # one added to chatbot.errors later needs nothing here
        code = "later_code"

    assert base.error_frame(LaterError("Said for people.")) == {
        "type": "error", "code": "later_code", "detail": "Said for people."}
    assert base.error_frame(NotFound("Gone.", "message_not_found"))["code"] == "message_not_found"
    assert base.error_frame(RateLimited("Slow down."))["code"] == "rate_limited"
    assert base.error_frame(IdentityRefused("Unsigned.", "invalid_identity"))["code"] == "invalid_identity"


def test_a_rate_limit_error_says_when_to_try_again():
    limited = ratelimit.Limited(ratelimit.Rule("visitor_resumes", 30, 60), 12)
    frame = base.error_frame(limited, {"type": "resume", "client_id": "r-1"})
    assert frame == {"type": "error", "code": "rate_limited", "detail": limited.detail, "client_id": "r-1",
                     "retry_after": 12}


@pytest.mark.parametrize("client_id, echoed", [
    ("m-1", "m-1"), ("x" * 200, "x" * 200), ("x" * 201, None), ("", None), (7, None), (None, None), (["m"], None),
])
def test_an_error_names_the_client_id_it_answers_only_when_usable(client_id, echoed):
    frame = base.error_frame(ServiceError("No.", "invalid_text"), {"type": "message", "client_id": client_id})
    assert frame.get("client_id") == echoed


def test_ids_are_echoed_only_as_integers_and_only_when_asked_for():
    about = {"type": "open", "conversation": 12, "message_id": "7", "client_id": "a-1"}
    fields = ("message_id", "client_id", "conversation")
    assert base.error_frame(NotFound("Gone."), about, fields) == {
        "type": "error", "code": "not_found", "detail": "Gone.", "client_id": "a-1", "conversation": 12}
    assert "conversation" not in base.error_frame(NotFound("Gone."), about)  # the widget's: client_id only


def test_the_replay_budget_refuses_past_its_limit_until_the_window_moves(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: now[0])
    budget = base.ReplayBudget(ratelimit.Rule("socket_replays", 2, 60))
    for _ in range(2):
        budget.check()
        budget.start()
    now[0] += 10
    with pytest.raises(ratelimit.Limited) as refused:
        budget.check()
    assert refused.value.code == "rate_limited" and refused.value.retry_after == 50
    now[0] += 50
    budget.check()  # the first replay left the window


def test_only_the_seq_a_page_ended_at_continues_it():
    budget = base.ReplayBudget(None)
    assert not budget.continues(0)
    budget.paged(100, more=True)
    assert budget.continues(100)
    assert not any(budget.continues(v) for v in (99, 101, "100", 100.0))
    budget.paged(150, more=False)
    assert not budget.continues(150) and not budget.continues(100)
    one = base.ReplayBudget(None)
    one.paged(1, more=True)
    assert not one.continues(True)


@pytest.mark.parametrize("value, expected", [
    ([5, 60], (5, 60)), ([1, 10], (1, 10)), (None, None), ([0, 60], (5, 60)), ("5/60", (5, 60)), ([True, 60], (5, 60)),
])
def test_socket_replays_setting(settings, value, expected):
    settings.SOCKET_REPLAYS = value
    rule = base.replay_rule()
    assert (None if rule is None else (rule.limit, rule.window)) == expected


@pytest.mark.django_db(transaction=True)
async def test_both_sockets_answer_an_unreadable_frame_alike():
    from channels.db import database_sync_to_async as db

    shop = await db(TenantFactory)(allowed_origins=["https://shop.example"])
    widget, _ = await widget_socket(shop)
    agent, _ = await agent_socket(await db(agent_of)(shop))
    for raw in ('{"type": "nope"}', "[1]", "{", '{"type": "x", "y": ' + "[" * 50 + "]" * 50 + "}",
                '{"type": "message", "text": "' + "x" * 20000 + '"}'):
        answers = []
        for comm in (widget, agent):
            await comm.send_to(text_data=raw)
            answers.append(await comm.receive_json_from(timeout=5))
        assert answers[0] == answers[1] and answers[0]["type"] == "error", answers
    long_id = "c" * 300  # the agent socket echoed any client_id; now the one limit holds for both
    await agent.send_to(text_data='{"type": "message", "conversation": -1, "text": "hi", "client_id": "%s"}' % long_id)
    refused = await agent.receive_json_from(timeout=5)
    assert refused["type"] == "error" and "client_id" not in refused and refused["conversation"] == -1
    await widget.disconnect()
    await agent.disconnect()

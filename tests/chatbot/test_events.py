"""Domain events: one test per event type checks its payload shape exactly (Zulip's test_events), and
delivery happens once the transaction commits, never on rollback, whatever one subscriber does."""
from datetime import date

import pytest
from django.db import transaction

from chatbot.console import assist

from chatbot import events

from chatbot.conversations import delivery, ownership, services
from chatbot.learning import services as learning
from chatbot.review import fixes
from chatbot.review.insights import Period
from chatbot.models import Conversation, Message
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)

# The shapes of docs/agent-protocol.md, with the extra fields the console uses.
MSG_KEYS = {"id", "seq", "sender", "text", "created_at"}
AMSG_KEYS = MSG_KEYS | {"author", "private"}
WHY_KEYS = {"grounding", "intent", "intent_confidence", "sentiment", "sentiment_confidence", "score", "latency_ms",
            "model_versions", "handoff_reason", "handoff_code"}
LABEL_KEYS = {"intent", "intent_confidence", "sentiment", "sentiment_confidence"}
CONV_KEYS = {"id", "tenant", "tenant_name", "status", "assignee", "visitor", "last_message", "unread", "sentiment",
             "language", "handoff_reason", "handoff_code", "csat", "resolved_at", "waiting_since", "created_at",
             "updated_at", "first_response_due", "first_response_at"}


def check_amsg(payload: dict) -> None:
    """AMSG: MSG + author + private; visitor messages carry their labels, bot replies their why."""
    sender = payload["sender"]
    expected = set(AMSG_KEYS)
    if sender == "visitor":
        expected.add("labels")
        assert set(payload["labels"]) == LABEL_KEYS
    if sender == "bot" or (sender == "system" and "why" in payload):
        expected.add("why")
        assert set(payload["why"]) == WHY_KEYS
        assert isinstance(payload["why"]["grounding"], list) and isinstance(payload["why"]["model_versions"], dict)
    if sender == "agent":
        expected.add("client_id")  # the sending console matches its pending bubble by it
    if "reply_to" in payload:
        expected.add("reply_to")
        assert isinstance(payload["reply_to"], int)
    if "email_state" in payload:  # a reply or transcript mailed to the visitor (docs/email.md)
        expected.add("email_state")
        assert payload["email_state"] in {"queued", "sent", "failed"} and sender in {"agent", "system"}
    if "channel" in payload:  # a visitor's answer by e-mail
        expected.add("channel")
        assert payload["channel"] == "email" and sender == "visitor"
    assert set(payload) == expected, set(payload) ^ expected
    assert sender in {"visitor", "bot", "agent", "system"}
    assert isinstance(payload["id"], int) and isinstance(payload["seq"], int) and isinstance(payload["text"], str)
    assert isinstance(payload["private"], bool) and payload["created_at"].endswith("Z")
    assert (payload["author"] is None) == (sender != "agent")


def check_conv(payload: dict) -> None:
    """CONV of the agent protocol."""
    assert set(payload) == CONV_KEYS, set(payload) ^ CONV_KEYS
    assert payload["status"] in {"bot", "waiting", "human", "resolved"}
    assert isinstance(payload["id"], int) and isinstance(payload["tenant"], str) and isinstance(payload["unread"], int)
    assert payload["assignee"] is None or set(payload["assignee"]) == {"id", "name"}
    assert set(payload["visitor"]) == {"id", "name", "email"}
    assert payload["last_message"] is None or set(payload["last_message"]) == {"text", "sender", "at"}
    assert payload["csat"] is None or 1 <= payload["csat"] <= 5


@pytest.fixture
def heard(monkeypatch) -> list[dict]:
    """Every event delivered during the test, in order; the real subscribers are set aside."""
    received: list[dict] = []
    for event_type in events.EVENT_TYPES:
        monkeypatch.setitem(events._subscribers, event_type, [received.append])
    return received


def of_type(heard: list[dict], event_type: str) -> list[dict]:
    return [e for e in heard if e["type"] == event_type]


@pytest.fixture
def conversation():
    return ConversationFactory(visitor=VisitorFactory(tenant=TenantFactory()))


def test_message_created_payload(heard, conversation):
    message, _ = services.message_receive(conversation.id, "Where is my order?", "c-1")
    [event] = of_type(heard, events.MESSAGE_CREATED)
    assert set(event) == {"type", "tenant", "conversation", "status", "message", "summary"}
    assert (event["tenant"], event["conversation"], event["status"]) == (conversation.tenant_id, conversation.id, "bot")
    check_amsg(event["message"])
    assert event["message"]["id"] == message.id and event["message"]["sender"] == "visitor"
    check_conv(event["summary"])
    assert event["summary"]["last_message"]["text"] == "Where is my order?" and event["summary"]["unread"] == 1


def test_message_created_payload_of_a_bot_reply_carries_its_why(heard, conversation):
    asked, _ = services.message_receive(conversation.id, "Do you ship abroad?", "c-1")
    services.message_label(asked.id, intent="shipping", intent_confidence=0.91, sentiment="neutral",
                           sentiment_confidence=0.8)
    services.bot_reply_store(asked.id, "Yes, to 30 countries.", model_version="responder:v3", score=0.77,
                             grounding=[{"id": 4, "question": "Do you ship abroad?"}])
    event = of_type(heard, events.MESSAGE_CREATED)[-1]
    check_amsg(event["message"])
    why = event["message"]["why"]
    assert (why["intent"], why["intent_confidence"], why["sentiment"]) == ("shipping", 0.91, "neutral")
    assert why["model_versions"] == {"reply": "responder:v3"} and why["grounding"][0]["id"] == 4
    assert event["message"]["reply_to"] == asked.id


def test_a_hand_off_keeps_its_reason_in_words_and_adds_its_code(heard, conversation):
    asked, _ = services.message_receive(conversation.id, "¿Hacen envíos?", "c-1")
    ownership.conversation_hand_off(conversation.id, "language: es", asked.id, code="language")
    event = of_type(heard, events.MESSAGE_CREATED)[-1]
    check_amsg(event["message"])
    check_conv(event["summary"])
    why = event["message"]["why"]
    assert (why["handoff_reason"], why["handoff_code"]) == ("language: es", "language")
    assert (event["summary"]["handoff_reason"], event["summary"]["handoff_code"]) == ("language: es", "language")


def test_conversation_changed_payload(heard, conversation):
    agent = agent_of(conversation.tenant, first_name="Ada", last_name="Lovelace")
    ownership.conversation_take_over(conversation.id, agent=agent)
    [event] = of_type(heard, events.CONVERSATION_CHANGED)
    assert set(event) == {"type", "tenant", "conversation", "previous", "reason"}
    assert event["tenant"] == conversation.tenant_id
    assert event["previous"] == {"status": "bot", "assignee": None}
    assert event["reason"] == "taken over"
    check_conv(event["conversation"])
    assert event["conversation"]["status"] == "human"
    assert event["conversation"]["assignee"] == {"id": agent.pk, "name": "Ada Lovelace"}


def test_typing_payload(heard, conversation):
    services.typing_set(conversation.id, "visitor", True)
    assert heard == [{"type": "typing", "tenant": conversation.tenant_id, "conversation": conversation.id,
                      "sender": "visitor", "on": True}]


def test_feedback_recorded_payload(heard, conversation):
    agent = agent_of(conversation.tenant)
    asked = MessageFactory(conversation=conversation, seq=1, sender="visitor", text="hi", intent="greeting")
    reply = MessageFactory(conversation=conversation, seq=2, sender="bot", text="Hello!", reply_to=asked)
    feedback = services.feedback_agent_record(agent, reply.id, "down", "Hi there, how can I help?", "hello")
    [event] = of_type(heard, events.FEEDBACK_RECORDED)
    assert event == {
        "type": "feedback_recorded", "tenant": conversation.tenant_id, "conversation": conversation.id,
        "message": reply.id,
        "feedback": {"id": feedback.id, "source": "agent", "rating": "down",
                     "correct_reply": "Hi there, how can I help?", "correct_intent": "hello", "agent": agent.pk},
    }


def test_suggestions_ready_payload(heard, conversation):
    asked = MessageFactory(conversation=conversation, seq=1, sender="visitor", text="refund?")
    assist.suggestions_store(asked.id, ["Sure.", " Sure. ", "", "Let me check."], "retrieval")
    assert heard == [{"type": "suggestions_ready", "tenant": conversation.tenant_id, "conversation": conversation.id,
                      "message": asked.id, "suggestions": ["Sure.", "Let me check."]}]
    assist.suggestions_store(asked.id, ["Another"], "retrieval")
    assert len(heard) == 1  # once per visitor message


def test_model_promoted_has_no_emitter_yet_but_reaches_its_subscribers(heard):
    event = {"type": events.MODEL_PROMOTED, "tenant": None, "kind": "sentiment", "version": "v2"}
    events.emit(event)
    assert heard == [event]


def test_unknown_event_types_are_refused():
    with pytest.raises(ValueError):
        events.emit({"type": "something_else"})
    with pytest.raises(ValueError):
        events.subscribe("something_else", print)


def test_answer_requested_payload_when_the_sweep_queues_a_stuck_message_again(heard, conversation, settings):
    message, _ = services.message_receive(conversation.id, "Where is my order?", "c-1")
    settings.ANSWER_QUEUED_STUCK_SECONDS = 0
    heard.clear()
    assert delivery.answers_sweep()["requeued"] == 1
    assert heard == [{"type": "answer_requested", "conversation": conversation.id, "message": message.id}]


def test_retrain_requested_payload_once_per_queued_run(heard, conversation):
    [run] = learning.retrain_request(conversation.tenant, "intent")
    learning.retrain_request(conversation.tenant, "intent")  # already queued: no second request
    assert heard == [{"type": "retrain_requested", "run": run.pk}]


def test_clusters_requested_payload(heard, conversation):
    fixes.clusters_request(conversation.tenant, Period(date(2025, 3, 3), date(2025, 3, 9)))
    assert heard == [{"type": "clusters_requested", "tenant": conversation.tenant_id,
                      "from": "2025-03-03", "to": "2025-03-09"}]


def test_every_event_type_is_covered_here():
    assert set(events.EVENT_TYPES) == {"message_created", "conversation_changed", "typing", "feedback_recorded",
                                       "model_promoted", "suggestions_ready", "answer_requested",
                                       "retrain_requested", "clusters_requested", "web_process_started",
                                       "email_requested", "email_state_changed"}  # shapes: tests/chatbot/test_mail_*


def test_the_core_sends_no_task_and_calls_no_worker_command():
    """Events are the one road to the workers: no task names, send_task or call_command in the core."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "chatbot"
    sources = {p: p.read_text() for p in root.rglob("*.py") if "migrations" not in p.parts}
    offending = [str(p) for p, text in sources.items()
                 if "send_task(" in text or "call_command(" in text or "django.dispatch" in text]
    assert offending == []


# --- delivery --------------------------------------------------------------------------------


def test_events_are_delivered_only_after_commit(heard, conversation):
    with transaction.atomic():
        services.message_receive(conversation.id, "hello", "c-1")
        assert heard == []
        with transaction.atomic():  # a savepoint releasing is not a commit
            events.emit({"type": events.MODEL_PROMOTED, "version": "v1"})
        assert heard == []
    assert [e["type"] for e in heard] == ["message_created", "model_promoted"]


def test_events_of_a_rolled_back_transaction_are_never_delivered(heard, conversation):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.message_receive(conversation.id, "hello", "c-1")
        raise RuntimeError("undo")
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():  # a rolled-back savepoint
            events.emit({"type": events.MODEL_PROMOTED, "version": "v1"})
            raise RuntimeError("undo")
    assert heard == []
    assert not Message.objects.exists()


def test_a_failing_subscriber_does_not_stop_the_others(monkeypatch, conversation, caplog):
    received = []

    def broken(event):
        raise RuntimeError("listener bug")

    monkeypatch.setitem(events._subscribers, events.MESSAGE_CREATED, [broken, received.append])
    message, _ = services.message_receive(conversation.id, "hello", "c-1")
    assert [e["message"]["id"] for e in received] == [message.id]
    assert Message.objects.filter(pk=message.pk).exists()  # the write stays
    assert "listener bug" in caplog.text


def test_subscribing_twice_delivers_once(monkeypatch):
    received = []
    monkeypatch.setitem(events._subscribers, events.MODEL_PROMOTED, [])
    events.subscribe(events.MODEL_PROMOTED, received.append)
    events.subscribe(events.MODEL_PROMOTED, received.append)
    events.emit({"type": events.MODEL_PROMOTED})
    assert len(received) == 1


def test_status_in_message_created_is_the_status_after_the_write(heard):
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=TenantFactory()),
                                       status=Conversation.Status.RESOLVED)
    services.message_receive(conversation.id, "I'm back", "c-1")
    [created] = of_type(heard, events.MESSAGE_CREATED)
    assert created["status"] == "bot" and created["summary"]["status"] == "bot"

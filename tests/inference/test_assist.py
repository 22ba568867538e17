"""Agent assist: reply suggestions for visitor messages that people answer, and their triggers."""
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model

from chatbot.console import assist

from chatbot import events

from chatbot.conversations import ownership, services
from chatbot.models import AgentMembership, AssistSuggestion, Conversation, Message, ModelVersion, TrainingExample
from chatbot.learning.registry import model_version_register
from inference import dispatch, registry
from inference.assist import suggest_replies
from inference.responder.generate import Reply
from tests.factories import ConversationFactory, KnowledgeEntryFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHIPPING = "Three to five business days."


@pytest.fixture
def later(monkeypatch):
    """What the triggers queued, instead of queueing it: [("answer" | "suggest", conversation, message)]."""
    calls = []
    monkeypatch.setattr(dispatch, "answer_later", lambda c, m: calls.append(("answer", c, m)))
    monkeypatch.setattr(dispatch, "suggest_later", lambda c, m: calls.append(("suggest", c, m)))
    return calls


@pytest.fixture
def ready(monkeypatch):
    """The suggestions_ready events delivered (to agents' consoles, normally)."""
    delivered = []
    monkeypatch.setitem(events._subscribers, events.SUGGESTIONS_READY, [delivered.append])
    return delivered


@pytest.fixture
def conversation(later):
    """A conversation handed to people, in a store with knowledge and example replies."""
    conversation = ConversationFactory(status=Conversation.Status.WAITING)
    tenant = conversation.tenant
    for question, answer in [("How long does shipping take?", SHIPPING),
                             ("Do you ship abroad?", "We ship to 40 countries."),
                             ("What is your return policy?", "Returns are free within 30 days."),
                             ("When are you open?", "We're open 9 to 5, Monday to Friday.")]:
        KnowledgeEntryFactory(tenant=tenant, question=question, answer=answer)
    TrainingExample.objects.bulk_create([
        TrainingExample(tenant=tenant, text="how long is delivery", intent="shipping_time",
                        response="three to five  business days."),  # the knowledge answer again
        TrainingExample(tenant=tenant, text="when will my parcel get here", intent="shipping_time",
                        response="Most parcels arrive within a week."),
        TrainingExample(tenant=tenant, text="thank you", intent="thanks", response="You're welcome!"),
    ])
    return conversation


def _visitor(conversation, text: str, client_id: str, intent: str = "") -> Message:
    message, _ = services.message_receive(conversation.id, text, client_id)
    if intent:
        Message.objects.filter(pk=message.pk).update(intent=intent)
        message.refresh_from_db()
    return message


def _agent(tenant):
    user = get_user_model().objects.create_user(f"agent-{tenant.pk}", password="pw-secret-123")
    AgentMembership.objects.create(user=user, tenant=tenant)
    return user


# --- what is suggested ------------------------------------------------------------------


def test_suggestions_come_from_the_knowledge_base_and_the_intents_replies_best_first_without_duplicates(
        conversation, ready):
    message = _visitor(conversation, "how long does shipping take", "c1", intent="shipping_time")
    texts = suggest_replies(conversation.id, message.id)
    assert texts[0] == SHIPPING
    assert 1 <= len(texts) <= 3
    normalised = [" ".join(t.split()).casefold() for t in texts]
    assert len(set(normalised)) == len(normalised)
    assert "You're welcome!" not in texts  # another intent's reply
    stored = AssistSuggestion.objects.get(message=message)
    assert (stored.texts, stored.source, stored.conversation_id) == (texts, "knowledge", conversation.id)
    assert ready == [{"type": "suggestions_ready", "tenant": conversation.tenant_id, "conversation": conversation.id,
                      "message": message.id, "suggestions": texts}]
    assert assist.suggestions_latest(conversation) == texts


def test_an_intents_example_reply_is_suggested_when_its_example_is_close(conversation):
    message = _visitor(conversation, "when will my parcel get here", "c1", intent="shipping_time")
    assert "Most parcels arrive within a week." in suggest_replies(conversation.id, message.id)


def test_at_most_three_suggestions(conversation):
    tenant = conversation.tenant
    tenant.min_retrieval_score = tenant.min_intent_reply_score = 0.0  # everything is close enough
    tenant.save()
    message = _visitor(conversation, "how long does shipping take", "c1")  # no intent: every example counts
    texts = suggest_replies(conversation.id, message.id)
    assert len(texts) == 3 and texts[0] == SHIPPING


def test_suggesting_twice_stores_and_announces_once(conversation, ready):
    message = _visitor(conversation, "how long does shipping take", "c1", intent="shipping_time")
    first = suggest_replies(conversation.id, message.id)
    assert suggest_replies(conversation.id, message.id) == first
    assert AssistSuggestion.objects.filter(message=message).count() == 1
    assert len(ready) == 1


def test_nothing_is_suggested_while_the_bot_has_the_conversation_or_for_a_superseded_message(conversation):
    old = _visitor(conversation, "how long does shipping take", "c1")
    new = _visitor(conversation, "do you ship abroad", "c2")
    assert suggest_replies(conversation.id, old.id) == []
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.BOT)
    assert suggest_replies(conversation.id, new.id) == []
    assert suggest_replies(conversation.id, 10**9) == []
    assert not AssistSuggestion.objects.exists()


def _responder_is(monkeypatch, responder) -> None:
    monkeypatch.setattr("inference.assist.responder_active", lambda tenant_id: (responder, SimpleNamespace(version="v7")))


class FakeResponder:
    def __init__(self, replies: list[tuple[str, float]]):
        self.replies, self.requests = replies, []

    def reply_batch(self, requests, settings=None):
        self.requests = list(requests)
        return [Reply(text, score, 5, 1.0) for text, score in self.replies[: len(requests)]]


def test_a_trained_responder_writes_the_suggestions(conversation, monkeypatch):
    responder = FakeResponder([("It ships in 3 days.", 0.6), ("It ships in 3  days.", 0.9), ("Gibberish", 0.1)])
    _responder_is(monkeypatch, responder)
    message = _visitor(conversation, "how long does shipping take", "c1", intent="shipping_time")
    assert suggest_replies(conversation.id, message.id) == ["It ships in 3  days."]
    assert AssistSuggestion.objects.get(message=message).source == "responder:v7"
    history, intent, knowledge = responder.requests[0]
    assert history[-1] == ("visitor", "how long does shipping take") and intent == "shipping_time"
    assert knowledge[0] == SHIPPING and len(responder.requests) == 3  # all hits, then the first two alone


def test_a_responder_with_nothing_usable_leaves_the_suggestions_to_the_knowledge_base(conversation, monkeypatch):
    responder = FakeResponder([("Gibberish", 0.05)] * 3)
    _responder_is(monkeypatch, responder)
    message = _visitor(conversation, "how long does shipping take", "c1", intent="shipping_time")
    assert suggest_replies(conversation.id, message.id)[0] == SHIPPING
    assert AssistSuggestion.objects.get(message=message).source == "knowledge"


def test_a_broken_responder_leaves_the_suggestions_to_the_knowledge_base(conversation, tmp_path):
    model_version_register(ModelVersion.Kind.RESPONDER, conversation.tenant, "broken", tmp_path / "missing", {})
    registry.reload()
    message = _visitor(conversation, "how long does shipping take", "c1", intent="shipping_time")
    assert suggest_replies(conversation.id, message.id)[0] == SHIPPING


def test_the_task_is_registered_by_name_and_acknowledged_late():
    from inference.tasks import suggest_replies_task

    assert suggest_replies_task.name == dispatch.SUGGEST_TASK == "inference.suggest_replies"
    assert suggest_replies_task.acks_late


# --- when it is triggered ---------------------------------------------------------------


def _created(status: str, sender: str = "visitor") -> dict:
    return {"type": "message_created", "tenant": 1, "conversation": 7, "status": status,
            "message": {"id": 70, "seq": 3, "sender": sender, "text": "hi"}, "summary": {}}


@pytest.mark.parametrize(("status", "sender", "queued"), [
    ("bot", "visitor", [("answer", 7, 70)]),
    ("waiting", "visitor", [("suggest", 7, 70)]),
    ("human", "visitor", [("suggest", 7, 70)]),
    ("resolved", "visitor", []),
    ("human", "agent", []),
    ("waiting", "system", []),
])
def test_a_visitor_message_is_answered_by_the_bot_or_gets_suggestions_for_people(later, status, sender, queued):
    dispatch.on_message_created(_created(status, sender))
    assert later == queued


def test_visitor_messages_while_people_have_the_conversation_get_suggestions(conversation, later):
    message = _visitor(conversation, "how long does shipping take", "c1")
    assert later == [("suggest", conversation.id, message.id)]


def test_a_hand_off_and_a_take_over_queue_suggestions_for_the_newest_visitor_message_once(later):
    conversation = ConversationFactory()
    _visitor(conversation, "hello", "c1")
    newest = _visitor(conversation, "my parcel is lost", "c2")
    assert [c[0] for c in later] == ["answer", "answer"]
    later.clear()
    ownership.conversation_hand_off(conversation.id, "low intent confidence (0.20)", newest.id, code="low_confidence")
    assert later == [("suggest", conversation.id, newest.id)]
    later.clear()
    assist.suggestions_store(newest.id, ["Sorry to hear that."], "knowledge")
    ownership.conversation_take_over(conversation.id, agent=_agent(conversation.tenant))
    assert later == []  # it has its suggestions already


def test_taking_over_from_the_bot_queues_suggestions(later):
    conversation = ConversationFactory()
    newest = _visitor(conversation, "my parcel is lost", "c1")
    later.clear()
    ownership.conversation_take_over(conversation.id, agent=_agent(conversation.tenant))
    assert later == [("suggest", conversation.id, newest.id)]


def test_other_conversation_changes_queue_nothing(later):
    conversation = ConversationFactory(status=Conversation.Status.HUMAN)
    _visitor(conversation, "my parcel is lost", "c1")
    later.clear()
    dispatch.on_conversation_changed({"type": "conversation_changed", "tenant": conversation.tenant_id,
                                      "conversation": {"id": conversation.id, "status": "human"},
                                      "previous": {}, "reason": "sentiment"})
    dispatch.on_conversation_changed({"type": "conversation_changed", "tenant": conversation.tenant_id,
                                      "conversation": {"id": conversation.id, "status": "human"},
                                      "previous": {"status": "human", "assignee": 1}, "reason": "reassigned"})
    dispatch.on_conversation_changed({"type": "conversation_changed", "tenant": conversation.tenant_id,
                                      "conversation": {"id": conversation.id, "status": "bot"},
                                      "previous": {"status": "human", "assignee": 1}, "reason": "handed back"})
    assert later == []


def test_suggest_later_sends_the_task_by_name_or_runs_it_here(monkeypatch, settings):
    import chatbot.celery

    sent, submitted = [], []
    monkeypatch.setattr(chatbot.celery.app, "send_task", lambda name, args: sent.append((name, args)))
    settings.ANSWER_IN_PROCESS = False
    dispatch.suggest_later(7, 70)
    assert sent == [("inference.suggest_replies", (7, 70))]
    monkeypatch.setattr(dispatch, "_thread", lambda name: SimpleNamespace(submit=lambda *a: submitted.append((name, a))))
    settings.ANSWER_IN_PROCESS = True
    dispatch.suggest_later(7, 70)
    assert submitted == [(dispatch.ANSWERER, (dispatch._run_here, "suggest", 7, 70))] and len(sent) == 1


@pytest.mark.parametrize(("event", "task", "args"), [
    ({"type": "answer_requested", "conversation": 7, "message": 70}, "inference.answer_message", (7, 70)),
    ({"type": "retrain_requested", "run": 5}, "inference.retrain", (5,)),
    ({"type": "clusters_requested", "tenant": 3, "from": "2025-03-03", "to": "2025-03-09"},
     "inference.unanswered_clusters", (3, "2025-03-03", "2025-03-09")),
])
def test_the_cores_requests_reach_the_workers_as_tasks_by_name(monkeypatch, settings, event, task, args):
    """Events are the one road: what the core asks for arrives as the named task, and the task exists."""
    import chatbot.celery

    sent = []
    monkeypatch.setattr(chatbot.celery.app, "send_task", lambda name, args: sent.append((name, args)))
    settings.ANSWER_IN_PROCESS = False
    events.deliver(event)
    assert sent == [(task, args)]
    assert task in chatbot.celery.app.tasks


"""Corrections count at once: an agent's fix reaches the same question and its paraphrases with no
retraining (inference.corrections, through the answer pipeline and the console's feedback service);
and a responder reaches visitors only when it serves them and every value it writes is grounded."""
import contextlib
import time
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.conversations import services
from chatbot.models import AgentMembership, Message, ModelVersion, TrainingExample
from chatbot.learning.registry import model_version_register
from inference import answer, corrections, registry
from inference.responder.generate import Reply
from tests.factories import ConversationFactory, KnowledgeEntryFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHIPPING = "Three to five business days."
RETURNS = "You can return unused items within 30 days."
ADDRESS = "Yes: reply with the new address before your order ships and we will change it."


@pytest.fixture
def shop():
    registry.reload()
    conversation = ConversationFactory(visitor__tenant__fallbacks_to_handoff=0)
    tenant = conversation.tenant
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?", answer=SHIPPING)
    KnowledgeEntryFactory(tenant=tenant, question="What is your return policy?", answer=RETURNS)
    agent = get_user_model().objects.create_user("ann", password="pw-secret-123")
    AgentMembership.objects.create(user=agent, tenant=tenant)
    return SimpleNamespace(tenant=tenant, conversation=conversation, agent=agent)


def ask(tenant, text: str) -> tuple[Message, Message]:
    """A visitor of a new conversation asks `text`; the visitor message and the bot's reply."""
    conversation = ConversationFactory(tenant=tenant, visitor__tenant=tenant)
    message, _ = services.message_receive(conversation.id, text, f"c-{time.monotonic_ns()}")
    assert answer.answer_message(conversation.id, message.id) in ("answered", "fallback")
    message.refresh_from_db()
    return message, Message.objects.get(reply_to=message, sender=Message.Sender.BOT)


def test_a_corrected_intent_and_reply_answer_the_question_and_its_paraphrases_at_once(shop):
    question = "can I change the delivery address of my order?"
    message, wrong = ask(shop.tenant, question)
    assert wrong.text != ADDRESS

    corrected_at = time.perf_counter()
    feedback = services.feedback_agent_record(shop.agent, wrong.id, correct_reply=ADDRESS,
                                              correct_intent="change_address")
    again, reply = ask(shop.tenant, question)
    served_in = time.perf_counter() - corrected_at
    assert reply.text == ADDRESS and reply.model_version == corrections.VERSION
    assert reply.grounding[0]["correction"] == feedback.id and reply.grounding[0]["message"] == message.id
    assert reply.score >= 0.99 and served_in < 5
    assert again.intent == "change_address" and again.intent_confidence >= 0.99
    assert again.label_versions["intent"] == corrections.VERSION

    for paraphrase in ("is it possible to change my order's delivery address?",
                       "I need to change the delivery address on my order"):
        visitor, reply = ask(shop.tenant, paraphrase)
        assert reply.text == ADDRESS, paraphrase
        assert settings_min() <= reply.score < 1 and visitor.intent == "change_address"

    other, reply = ask(shop.tenant, "how long does shipping take")
    assert reply.text == SHIPPING and other.intent != "change_address"
    assert not ModelVersion.objects.exists()  # nothing was retrained


def settings_min() -> float:
    from django.conf import settings

    return settings.CORRECTION_MEMORY_MIN_SCORE


def test_a_reply_naming_its_own_order_answers_only_that_message_while_its_intent_carries_over(shop):
    _, wrong = ask(shop.tenant, "where is order NW-123456?")
    specific = "Your order NW-123456 left our warehouse today."
    services.feedback_agent_record(shop.agent, wrong.id, correct_reply=specific, correct_intent="order_status")

    other, reply = ask(shop.tenant, "where is order NW-777777?")
    assert reply.text != specific and "NW-123456" not in reply.text
    assert other.intent == "order_status" and other.label_versions["intent"] == corrections.VERSION
    _, reply = ask(shop.tenant, "where is order NW-123456?")
    assert reply.text == specific


def test_the_newest_correction_of_the_same_question_wins(shop):
    question = "do you gift wrap"
    _, first = ask(shop.tenant, question)
    services.feedback_agent_record(shop.agent, first.id, correct_reply="No, we do not gift wrap.")
    _, second = ask(shop.tenant, question)
    assert second.text == "No, we do not gift wrap."
    bob = get_user_model().objects.create_user("bob", password="pw-secret-123")
    AgentMembership.objects.create(user=bob, tenant=shop.tenant)
    services.feedback_agent_record(bob, first.id, correct_reply="Yes, gift wrapping costs 3 euros.")
    _, third = ask(shop.tenant, "Do you gift wrap?")
    assert third.text == "Yes, gift wrapping costs 3 euros."


def test_the_memory_is_read_without_a_query_per_message_and_again_after_a_correction(shop):
    _, wrong = ask(shop.tenant, "can I pay with bitcoin")
    corrections.correction_match(shop.tenant.id, "can I pay with bitcoin")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            assert corrections.correction_match(shop.tenant.id, "can I pay with bitcoin") is None
    assert len(queries) == 0
    services.feedback_agent_record(shop.agent, wrong.id, correct_reply="We accept cards and PayPal only.")
    with CaptureQueriesContext(connection) as queries:
        found = corrections.correction_match(shop.tenant.id, "can i pay with bitcoin?")
    assert found is not None and found.reply == "We accept cards and PayPal only."
    assert 1 <= len(queries) <= 3  # the version stamp, then the rebuilt memory's rows and the store's base


def test_a_rating_or_a_correction_elsewhere_changes_nothing_here(shop):
    _, wrong = ask(shop.tenant, "can I pay with bitcoin")
    services.feedback_agent_record(shop.agent, wrong.id, rating="down")
    assert corrections.correction_match(shop.tenant.id, "can I pay with bitcoin") is None
    elsewhere = ConversationFactory()
    assert corrections.correction_match(elsewhere.tenant.id, "can I pay with bitcoin") is None


# --- the responder reaches visitors only where it serves them, with grounded values -------------------


class FakeResponder:
    def __init__(self, text: str, score: float = 0.9, source: str = "generated"):
        self.text, self.score, self.source = text, score, source

    def reply(self, history, intent, knowledge, settings=None):
        return Reply(self.text, self.score, 5, 1.0, source=self.source, generated=self.text)


def _responder(monkeypatch, tenant, text: str, serving: str, **reply):
    version = model_version_register(ModelVersion.Kind.RESPONDER, tenant, f"v-{serving or 'legacy'}", "/nowhere", {})
    ModelVersion.objects.filter(pk=version.pk).update(serving=serving)
    version.refresh_from_db()

    @contextlib.contextmanager
    def lease(tenant_id):
        yield FakeResponder(text, **reply), version

    monkeypatch.setattr(answer, "responder_lease", lease)


UNCOVERED = "do you gift wrap presents"  # no knowledge entry is close enough to answer it


@pytest.mark.parametrize("serving", ["visitors", ""])
def test_a_responder_serving_visitors_answers_with_values_it_can_ground(shop, monkeypatch, serving):
    TrainingExample.objects.create(tenant=shop.tenant, text="returns?", intent="returns",
                                   response="Call us on 555-0100 for a return label.")
    _responder(monkeypatch, shop.tenant, "We gift wrap for free; call 555-0100.", serving)
    _, reply = ask(shop.tenant, UNCOVERED)
    assert reply.text == "We gift wrap for free; call 555-0100." and reply.model_version.startswith("responder:")


def test_a_knowledge_entry_close_enough_answers_before_a_serving_responder(shop, monkeypatch):
    _responder(monkeypatch, shop.tenant, "Returns are free for 30 days.", "visitors")
    _, reply = ask(shop.tenant, "what is your return policy")
    assert reply.text == RETURNS and reply.model_version == answer.RETRIEVAL_VERSION
    _, other = ask(shop.tenant, UNCOVERED)
    assert other.text == "Returns are free for 30 days." and other.model_version.startswith("responder:")


@pytest.mark.parametrize("source,sent", [("generated", False), ("stored", True)])
def test_a_doubtful_generated_reply_hands_off_but_a_stored_one_that_won_the_consensus_is_sent(
        shop, monkeypatch, source, sent):
    _responder(monkeypatch, shop.tenant, "We gift wrap for free.", "visitors", score=0.1, source=source)
    message, reply = ask_or_notice(shop.tenant, UNCOVERED)
    if sent:
        assert reply.sender == "bot" and reply.text == "We gift wrap for free."
    else:
        assert reply.sender == "system" and reply.handoff_code == "low_responder_score"


def ask_or_notice(tenant, text: str) -> tuple[Message, Message]:
    """`ask`, where the answer may also be a hand-off notice."""
    conversation = ConversationFactory(tenant=tenant, visitor__tenant=tenant)
    message, _ = services.message_receive(conversation.id, text, f"c-{time.monotonic_ns()}")
    answer.answer_message(conversation.id, message.id)
    return message, Message.objects.exclude(sender=Message.Sender.VISITOR).get(reply_to=message)


def test_a_responder_writing_a_value_from_nowhere_is_not_sent(shop, monkeypatch):
    _responder(monkeypatch, shop.tenant, "We gift wrap for 45 cents at wrap@shop.example.", "visitors")
    _, reply = ask(shop.tenant, UNCOVERED)
    assert reply.text == shop.tenant.fallback_text and reply.model_version == answer.RETRIEVAL_VERSION


def test_an_assist_only_responder_never_answers_visitors(shop, monkeypatch):
    _responder(monkeypatch, shop.tenant, "Returns are free for 30 days.", "assist")
    _, reply = ask(shop.tenant, "what is your return policy")
    assert reply.text == RETURNS and reply.model_version == answer.RETRIEVAL_VERSION

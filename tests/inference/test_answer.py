"""The answer pipeline run directly (as a worker runs it), against the real database and Redis."""
import pytest

from chatbot import services
from chatbot.models import Conversation, Message, ModelVersion
from chatbot.registry import model_version_register
from inference import registry
from inference.answer import answer_message
from tests.factories import ConversationFactory, KnowledgeEntryFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation():
    conversation = ConversationFactory()
    KnowledgeEntryFactory(tenant=conversation.tenant, question="How long does shipping take?",
                          answer="Three to five business days.")
    return conversation


def test_answering_twice_replies_once(conversation):
    message, _ = services.message_receive(conversation.id, "how long does shipping take", "c1")
    assert answer_message(conversation.id, message.id) == "answered"
    assert answer_message(conversation.id, message.id) == "skipped: already answered"
    reply = Message.objects.get(sender="bot")
    assert reply.text == "Three to five business days." and reply.reply_to == message


def test_broken_model_hands_the_conversation_to_humans_instead_of_leaving_the_visitor_waiting(conversation, tmp_path):
    model_version_register(ModelVersion.Kind.RESPONDER, conversation.tenant, "broken", tmp_path / "missing", {})
    registry.reload()
    message, _ = services.message_receive(conversation.id, "how long does shipping take", "c1")
    assert answer_message(conversation.id, message.id) == "handed_off: bot failed"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING
    assert conversation.handoff_reason.startswith("the bot failed")
    assert Message.objects.filter(sender="system", reply_to=message).exists()


def test_order_numbers_do_not_steer_retrieval():
    from inference.responder.placeholders import values_strip

    assert values_strip("Where is order NW-482913? mail me at jo@example.com") == "Where is order ? mail me at"
    assert values_strip("NW-123456") == ""


def test_warm_up_builds_each_tenants_indexes_before_the_first_message(conversation):
    from inference.warmup import warm_up

    registry.reload()
    warm_up()
    built = {key[:2] for key in registry._objects if isinstance(key, tuple) and len(key) == 3}
    assert {("knowledge", conversation.tenant_id), ("intent_replies", conversation.tenant_id)} <= built

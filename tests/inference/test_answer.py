"""The answer pipeline run directly (as a worker runs it), against the real database and Redis."""
import pytest
from django.contrib.auth import get_user_model

from chatbot.conversations import ownership, services
from chatbot.models import AgentMembership, Conversation, Message, ModelVersion
from chatbot.learning.registry import model_version_register
from inference import registry
from inference.answer import answer_message
from inference.labelling import MessageLabels
from tests.factories import ConversationFactory, KnowledgeEntryFactory
from tests.nlu.conftest import tiny_config, tiny_data, tiny_encoder  # noqa: F401 - fixtures

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
    # a question no knowledge entry answers: the responder is asked (and its folder is gone)
    message, _ = services.message_receive(conversation.id, "do you gift wrap presents", "c1")
    assert answer_message(conversation.id, message.id) == "handed_off: bot failed"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING
    assert conversation.handoff_reason == "bot unavailable"  # a permanent failure: no retry, to people
    notice = Message.objects.get(sender="system", reply_to=message)
    assert notice.text.startswith("Sorry, our assistant is unavailable right now.")
    message.refresh_from_db()
    assert (message.answer_state, message.answer_attempts) == ("failed", 1)


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


# --- repeated fallbacks ---------------------------------------------------------------


def _ask(conversation, text: str, client_id: str) -> tuple[str, Message]:
    message, _ = services.message_receive(conversation.id, text, client_id)
    return answer_message(conversation.id, message.id), message


def test_a_second_fallback_in_a_row_hands_off_instead(conversation):
    assert conversation.tenant.fallbacks_to_handoff == 2  # the default
    outcome, first = _ask(conversation, "zebra pancakes purple", "c1")
    assert outcome == "fallback"
    fallback = Message.objects.get(reply_to=first, sender="bot")
    assert fallback.text == conversation.tenant.fallback_text
    assert (fallback.handoff_code, fallback.handoff_reason) == ("fallback", "no knowledge entry close enough")
    outcome, second = _ask(conversation, "violin tangerine moon", "c2")
    assert outcome == "handed_off"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING
    assert (conversation.handoff_code, conversation.handoff_reason) == ("repeated_fallback", "2 fallbacks in a row")
    assert not Message.objects.filter(reply_to=second, sender="bot").exists()
    notice = Message.objects.get(reply_to=second, sender="system")
    assert (notice.handoff_code, notice.handoff_reason) == ("repeated_fallback", "2 fallbacks in a row")


def test_a_real_answer_between_fallbacks_resets_the_count(conversation):
    assert _ask(conversation, "zebra pancakes purple", "c1")[0] == "fallback"
    assert _ask(conversation, "how long does shipping take", "c2")[0] == "answered"
    assert _ask(conversation, "violin tangerine moon", "c3")[0] == "fallback"
    assert _ask(conversation, "zebra pancakes purple again", "c4")[0] == "handed_off"


def test_a_tenant_with_fallbacks_to_handoff_zero_keeps_falling_back(conversation):
    conversation.tenant.fallbacks_to_handoff = 0
    conversation.tenant.save()
    for n, text in enumerate(["zebra pancakes purple", "violin tangerine moon", "zebra violin", "purple moon"]):
        assert _ask(conversation, text, f"c{n}")[0] == "fallback"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT


def test_fallbacks_before_a_hand_back_do_not_count_after_it(conversation):
    from inference.answer import fallbacks_in_a_row

    _ask(conversation, "zebra pancakes purple", "c1")
    assert _ask(conversation, "violin tangerine moon", "c2")[0] == "handed_off"
    agent = get_user_model().objects.create_user("ann", password="pw-secret-123")
    AgentMembership.objects.create(user=agent, tenant=conversation.tenant)
    ownership.conversation_hand_back(conversation.id, agent=agent)  # its notice ends the run of fallbacks
    outcome, third = _ask(conversation, "zebra violin", "c3")
    assert outcome == "fallback"
    assert fallbacks_in_a_row(third, 5) == 0


# --- strong complaints ------------------------------------------------------------------


@pytest.fixture
def labelled(monkeypatch):
    """The classifiers' labels for the next messages, in order (a tiny model is never this sure)."""
    queue = []
    monkeypatch.setattr("inference.answer.message_labels", lambda tenant_id, text: queue.pop(0))
    return queue


def test_a_furious_complaint_gets_an_apology_and_the_offer_of_a_person_not_a_shipping_faq(conversation, labelled):
    labelled.append(MessageLabels("complaint", 0.9, "negative", 0.94))
    outcome, message = _ask(conversation, "This is the third time my package is late, I'm furious", "c1")
    assert outcome == "answered"
    reply = Message.objects.get(reply_to=message, sender="bot")
    assert reply.text == conversation.tenant.complaint_text
    assert reply.model_version == "complaint-rule" and reply.handoff_reason == ""
    assert reply.grounding == [{"rule": "complaint", "reason": "strong complaint (negative 0.94)",
                                "intent": "complaint", "sentiment_confidence": 0.94, "negative_turns": 1}]
    message.refresh_from_db()
    assert (message.intent, message.sentiment, message.sentiment_confidence) == ("complaint", "negative", 0.94)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT


def test_an_upset_streak_about_a_question_gets_the_apology_then_the_answer_and_then_a_person(conversation, labelled):
    conversation.tenant.negative_turns_to_handoff = 3
    conversation.tenant.save()
    upset = MessageLabels("shipping_time", 0.9, "negative", 0.9)
    labelled.extend([upset, upset, upset])
    outcome, first = _ask(conversation, "how long does shipping take, seriously", "c1")
    assert Message.objects.get(reply_to=first, sender="bot").text == "Three to five business days."  # one turn
    outcome, second = _ask(conversation, "how long does shipping take?? still nothing", "c2")
    reply = Message.objects.get(reply_to=second, sender="bot")
    assert reply.text == conversation.tenant.complaint_text + "\n\nThree to five business days."
    assert reply.model_version == "complaint-rule" and reply.grounding[0]["negative_turns"] == 2
    assert reply.grounding[1]["question"] == "How long does shipping take?"
    assert _ask(conversation, "how long does shipping take!!!", "c3")[0] == "handed_off"
    conversation.refresh_from_db()
    assert (conversation.handoff_code, conversation.handoff_reason) == (
        "negative_sentiment", "negative sentiment for 3 turns")


# --- warm-up -----------------------------------------------------------------------------


def test_warm_up_loads_the_intent_and_sentiment_classifiers_so_the_first_message_does_not(conversation, tiny_data,
                                                                                         tiny_config):
    from chatbot.models import SentimentExample, TrainingExample
    from inference.warmup import warm_up
    from inference.nlu_services import intent_model_train, sentiment_model_train

    texts, labels = tiny_data
    TrainingExample.objects.bulk_create(
        TrainingExample(tenant=conversation.tenant, text=t, intent=i) for t, i in zip(texts, labels))
    SentimentExample.objects.bulk_create(
        SentimentExample(text=t, label=label) for t, label in [
            ("this is terrible", "negative"), ("i am so angry", "negative"), ("worst service ever", "negative"),
            ("where is my order", "neutral"), ("what are your hours", "neutral"), ("i have a question", "neutral"),
            ("thank you so much", "positive"), ("great service", "positive"), ("i love it", "positive"),
        ])
    intent = intent_model_train(conversation.tenant, tiny_config, progress=False)
    sentiment = sentiment_model_train(config=tiny_config, progress=False)
    registry.reload()
    warm_up()
    loaded = {key: value[0] for key, value in registry._objects.items() if key[0] == "active"}
    assert loaded == {("active", "intent", conversation.tenant_id): intent.pk,
                      ("active", "sentiment", None): sentiment.pk}

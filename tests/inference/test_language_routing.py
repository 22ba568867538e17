"""A message in a language the store's bot does not answer goes to people, with the reason
"language: xx", instead of an English answer or the fallback; every visitor message gets its language."""
import pytest

from chatbot.conversations import services
from chatbot.models import Conversation, Message
from chatbot.conversations.payloads import conversation_payload
from inference import policy
from inference.answer import answer_message
from tests.factories import ConversationFactory, KnowledgeEntryFactory, TenantFactory, VisitorFactory

pytestmark = pytest.mark.django_db(transaction=True)


MEXICO_ES = {"question": "¿Hacen envíos a México?", "answer": "Sí, enviamos a México en 5 a 7 días."}


def store(languages: list[str], mexico_translations: dict | None = None) -> Conversation:
    tenant = TenantFactory(languages=languages)
    KnowledgeEntryFactory(tenant=tenant, question="Do you ship to Mexico?",
                          answer="Yes, we ship to Mexico in 5 to 7 days.", translations=mexico_translations or {})
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?",
                          answer="Three to five business days.")
    return ConversationFactory(visitor=VisitorFactory(tenant=tenant))


def ask(conversation, text: str, client_id: str) -> tuple[str, Message]:
    message, _ = services.message_receive(conversation.id, text, client_id)
    return answer_message(conversation.id, message.id), message


def test_a_spanish_question_to_an_english_only_store_goes_to_people_with_the_language_as_reason():
    conversation = store(["en"])
    outcome, message = ask(conversation, "¿Hacen envíos a México?", "c1")
    assert outcome == "handed_off"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING
    assert (conversation.handoff_code, conversation.handoff_reason) == ("language", "language: es")
    assert conversation.language == "es"
    assert not Message.objects.filter(reply_to=message, sender="bot").exists()  # no English guess, no fallback
    notice = Message.objects.get(reply_to=message, sender="system")
    assert (notice.handoff_code, notice.handoff_reason) == ("language", "language: es")
    message.refresh_from_db()
    assert message.language == "es"
    assert conversation_payload(conversation)["language"] == "es"


def test_english_is_answered_and_labelled_en():
    conversation = store(["en"])
    outcome, message = ask(conversation, "how long does shipping take", "c1")
    assert outcome == "answered"
    message.refresh_from_db()
    assert message.language == "en"
    assert Message.objects.get(reply_to=message, sender="bot").text == "Three to five business days."


@pytest.mark.parametrize("text", ["ok", "NW-482913", "thanks", "hi"])
def test_short_or_ambiguous_messages_are_never_handed_off_for_their_language(text):
    conversation = store(["es"])
    outcome, message = ask(conversation, text, "c1")
    assert outcome in ("answered", "fallback")
    message.refresh_from_db()
    assert message.language == ""
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT and conversation.language == ""


def test_a_store_that_lists_no_languages_answers_in_every_one():
    conversation = store([])
    outcome, message = ask(conversation, "¿Hacen envíos a México?", "c1")
    assert outcome != "handed_off"
    message.refresh_from_db()
    assert message.language == "es"


def test_a_store_that_answers_spanish_too_keeps_the_conversation_and_answers_in_spanish():
    conversation = store(["en", "es"], {"es": MEXICO_ES})
    outcome, message = ask(conversation, "¿Hacen envíos a México?", "c1")
    assert outcome == "answered"
    assert Message.objects.get(reply_to=message, sender="bot").text == MEXICO_ES["answer"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT


def test_the_policy_checks_the_language_before_anything_else():
    tenant = TenantFactory(languages=["en"])
    labels = policy.Labels("shipping", 0.99, "neutral", 0.9)
    decision = policy.decide(tenant, "quiero hablar con una persona", labels, 0.9, [], language="es")
    assert (decision.action, decision.reason, decision.details) == ("hand_off", "language: es", {"language": "es"})
    assert policy.decide(tenant, "hola", labels, 0.9, [], language="").action == "answer"
    assert policy.decide(tenant, "hi", labels, 0.9, [], language="en").action == "answer"
    assert not policy.unserved_language(TenantFactory(languages=[]), "es")


def test_a_detector_that_fails_never_stops_the_bot(monkeypatch):
    def broken(text, prefer=()):
        raise RuntimeError("model file missing")

    monkeypatch.setattr("inference.language.detect_language", broken)
    conversation = store(["en"])
    assert ask(conversation, "how long does shipping take", "c1")[0] == "answered"


def test_the_inbox_filters_by_language_and_the_console_knows_who_speaks_it(client):
    import json
    import re

    from chatbot.conversations import selectors
    from chatbot.models import AgentMembership
    from tests.factories import UserFactory

    spanish = store(["en"])
    tenant = spanish.tenant
    english = ConversationFactory(visitor=VisitorFactory(tenant=tenant))
    ask(spanish, "¿Hacen envíos a México?", "c1")
    ask(english, "how long does shipping take", "c2")
    agent = UserFactory(username="lucia")
    AgentMembership.objects.create(user=agent, tenant=tenant, languages=["en", "es"])
    assert [c.id for c in selectors.inbox(agent, "all", "lang:es")] == [spanish.id]
    assert [c.id for c in selectors.inbox(agent, "all", "LANG:en")] == [english.id]
    assert [c.id for c in selectors.inbox(agent, "all", "lang:es México")] == [spanish.id]
    assert list(selectors.inbox(agent, "all", "lang:es shipping")) == []
    assert selectors.inbox_language_term("refund lang:de please") == ("de", "refund please")
    client.force_login(agent)
    html = client.get("/console/").content.decode()
    data = json.loads(re.search(r'<script id="console-data" type="application/json">(.*?)</script>', html, re.S)[1])
    assert data["speaks"] == {tenant.slug: ["en", "es"]}
    assert data["tenants"][0]["languages"] == ["en"]
    assert data["teams"][tenant.slug][0]["languages"] == ["en", "es"]

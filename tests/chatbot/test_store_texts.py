"""The store's own texts (greeting, fallback, hand-off, complaint, away) in the visitor's language."""
import json
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ValidationError

from chatbot.asgi import application
from chatbot.conversations import ownership, services
from chatbot.models import TRANSLATED_TEXTS, HandoffReason, Message, Tenant, language_code, translations_validate
from inference.answer import answer_message
from tests.chatbot.sockets import WIDGET_ORIGIN
from tests.factories import ConversationFactory, KnowledgeEntryFactory, TenantFactory

SPANISH = {"greeting": "¡Hola! ¿En qué te ayudo?", "fallback_text": "Perdona, no lo he entendido.",
           "no_agent_text": "Ahora no hay nadie del equipo conectado."}
DEMO_TEXTS = Path(__file__).resolve().parents[2] / "chatbot" / "demo" / "texts.json"


@pytest.mark.parametrize(("tag", "code"), [("es", "es"), ("pt-BR", "pt"), ("DE_at", "de"), ("", ""), ("spanish", ""),
                                           ("e", ""), (None, ""), ("zh-Hant-TW", "zh")])
def test_a_language_tag_reads_as_its_two_letter_code(tag, code):
    assert language_code(tag) == code


def test_a_text_in_the_visitors_language_else_as_the_store_wrote_it():
    tenant = Tenant(name="S", slug="s", translations={"es": SPANISH, "de": {"greeting": "  "}})
    assert tenant.text("greeting", "es") == SPANISH["greeting"]
    assert tenant.text("greeting", "es-MX") == SPANISH["greeting"]
    assert tenant.text("handoff_text", "es") == tenant.handoff_text  # not written in Spanish
    assert tenant.text("greeting", "de") == tenant.greeting  # blank is not a text
    assert tenant.text("greeting", "ja") == tenant.text("greeting", "") == tenant.greeting


@pytest.mark.parametrize("value", [
    ["es"], {"spanish": {"greeting": "Hola"}}, {"es": "Hola"}, {"es": {"goodbye": "Adiós"}},
    {"es": {"greeting": ""}}, {"es": {"greeting": 3}}, {"es": {"greeting": "x" * 1001}},
])
def test_malformed_translations_are_refused_with_a_clear_error(value):
    with pytest.raises(ValidationError):
        translations_validate(value)


def test_the_demo_store_writes_every_text_in_five_more_languages():
    texts = json.loads(DEMO_TEXTS.read_text(encoding="utf-8"))
    translations_validate(texts)
    assert sorted(texts) == ["de", "es", "fr", "it", "pt"]
    # The line before an untranslated answer has the platform's wording (chatbot.content) unless written.
    assert all(set(by_name) == set(TRANSLATED_TEXTS) - {"untranslated_note"} for by_name in texts.values())


@pytest.mark.django_db(transaction=True)
async def test_the_session_greets_in_the_widgets_language():
    from channels.db import database_sync_to_async

    tenant = await database_sync_to_async(TenantFactory)(allowed_origins=[WIDGET_ORIGIN], translations={"es": SPANISH})
    greetings = []
    for lang in ("es-ES", "fr", ""):
        comm = WebsocketCommunicator(application, f"/ws/widget/?key={tenant.public_key}&lang={lang}",
                                     headers=[(b"origin", WIDGET_ORIGIN.encode())])
        assert (await comm.connect(timeout=5))[0]
        greetings.append((await comm.receive_json_from(timeout=5))["greeting"])
        await comm.disconnect()
    assert greetings == [SPANISH["greeting"], tenant.greeting, tenant.greeting]


@pytest.mark.django_db(transaction=True)
def test_the_hand_off_notice_and_the_fallback_follow_the_conversations_language():
    tenant = TenantFactory(translations={"es": SPANISH}, languages=["en", "es"])
    conversation = ConversationFactory(visitor__tenant=tenant)
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?", answer="Three to five days.")
    message, _ = services.message_receive(conversation.id, "¿Tienen calcetines de lana merino para niños pequeños?",
                                          "c1")
    assert answer_message(conversation.id, message.id) == "fallback"
    message.refresh_from_db()
    assert message.language == "es"
    assert Message.objects.get(reply_to=message, sender="bot").text == SPANISH["fallback_text"]
    notice = ownership.conversation_hand_off(conversation.id, "visitor asked for a person",
                                             code=HandoffReason.ASKED_FOR_PERSON)
    assert notice.text == SPANISH["no_agent_text"]  # nobody online, in Spanish


@pytest.mark.django_db(transaction=True)
def test_the_demo_store_hands_a_japanese_visitor_to_a_person_and_answers_a_spanish_one_in_spanish():
    from chatbot.demo import demo_seed

    tenant = demo_seed(["http://localhost:8000"]).tenant
    assert tenant.languages == ["en", "es", "de", "fr"]
    japanese = ConversationFactory(visitor__tenant=tenant)
    message, _ = services.message_receive(japanese.id, "注文した商品がまだ届いていません。どうすればいいですか？", "c1")
    assert answer_message(japanese.id, message.id) == "handed_off"
    japanese.refresh_from_db()
    assert (japanese.handoff_code, japanese.handoff_reason) == ("language", "language: ja")

    spanish = ConversationFactory(visitor__tenant=tenant)
    message, _ = services.message_receive(spanish.id, "¿Venden también bicicletas eléctricas de montaña?", "c1")
    assert answer_message(spanish.id, message.id) != "handed_off"  # Spanish is served: not handed off for it
    reply = Message.objects.get(reply_to=message, sender="bot")
    assert reply.handoff_code != "fallback" or reply.text == tenant.text("fallback_text", "es")

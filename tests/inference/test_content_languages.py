"""The store's content in the visitor's language: knowledge entries and intents' replies written per language,
the rule for a language the store wrote no answer in, and the multilingual base that matches across languages."""
import pytest
from django.core.exceptions import ValidationError

from chatbot.content import content_language, untranslated_note, version_in
from chatbot.conversations import services
from chatbot.models import (
    HandoffReason, Message, Tenant, entry_translations_validate, languages_validate, reply_translations_validate,
)
from inference import bases
from inference.answer import answer_message
from inference.intent_replies import IntentReplyIndex
from inference.retrieval import sentence_encoder
from tests.factories import ConversationFactory, KnowledgeEntryFactory, TenantFactory

SHIPPING = {"question": "How long does shipping take?", "answer": "Orders arrive in three to five working days."}
SHIPPING_ES = {"question": "¿Cuánto tarda el envío?", "answer": "Los pedidos llegan en tres a cinco días laborables."}
PAYPAL = {"question": "Can I pay with PayPal?", "answer": "Yes, we accept PayPal, Visa, Mastercard and American Express."}


def _ask(tenant, text: str) -> tuple[str, Message | None]:
    conversation = ConversationFactory(visitor__tenant=tenant)
    message, _ = services.message_receive(conversation.id, text, "c1")
    outcome = answer_message(conversation.id, message.id)
    return outcome, Message.objects.filter(reply_to=message, sender=Message.Sender.BOT).first()


# --- the rules, without models -------------------------------------------------------------------------


def test_content_is_read_in_the_message_language_or_the_main_one():
    assert content_language("es", "en", ["en", "es"]) == "es"
    assert content_language("", "en", ["en", "es"]) == ""  # unclear: the version the message matched
    assert content_language("es", "en", []) == "en"  # a store listing no languages writes one version
    assert content_language("", "en", ["en", "es"], "es") == "es"  # unclear: the conversation's language
    assert content_language("", "en", ["en", "es"], "it") == ""  # one the store does not list
    assert content_language("de", "en", ["en", "de"], "es") == "de"  # a clear message's own


def test_a_version_is_the_main_text_its_translation_or_none():
    translations = {"es": SHIPPING_ES, "de": {"question": "Q", "answer": "  "}}
    assert version_in("en", "en", "main", translations, "answer") == "main"
    assert version_in("es", "en", "main", translations, "answer") == SHIPPING_ES["answer"]
    assert version_in("de", "en", "main", translations, "answer") is None  # blank is not written
    assert version_in("fr", "en", "main", translations, "answer") is None
    assert version_in("es", "en", "main", {"es": "hola"}) == "hola"  # a canned reply's shape


def test_the_untranslated_note_names_the_main_language_in_the_visitors():
    assert untranslated_note("es", "en") == "Todavía no tenemos esta respuesta en tu idioma; aquí la tienes en inglés:"
    assert "German" in untranslated_note("ja", "de")  # a language without a note: English


@pytest.mark.parametrize("value", [
    [], {"spanish": SHIPPING_ES}, {"es": "text"}, {"es": {"question": "Q"}},
    {"es": {"question": "Q", "answer": ""}}, {"es": {"question": "Q", "answer": "A", "extra": "x"}},
    {"es": {"question": "Q", "answer": "A" * 5000}},
])
def test_malformed_entry_translations_are_refused(value):
    with pytest.raises(ValidationError):
        entry_translations_validate(value)


@pytest.mark.parametrize("value", ["en", ["english"], ["EN"], ["en", "en"], [None], {"en": True}])
def test_a_store_lists_distinct_two_letter_codes(value):
    with pytest.raises(ValidationError):
        languages_validate(value)
    languages_validate(["en", "es"])
    languages_validate([])


@pytest.mark.parametrize("value", [[], {"ES": "hola"}, {"es": ""}, {"es": 3}])
def test_malformed_reply_translations_are_refused(value):
    with pytest.raises(ValidationError):
        reply_translations_validate(value)


@pytest.mark.django_db
def test_the_main_language_is_the_first_listed_and_a_store_may_write_its_note():
    assert Tenant(languages=[]).main_language == "en"
    tenant = Tenant(languages=["de", "en"], translations={"fr": {"untranslated_note": "En allemand :"}})
    assert tenant.main_language == "de"
    assert tenant.text("untranslated_note", "fr") == "En allemand :"
    assert tenant.text("untranslated_note", "es").endswith("en alemán:")


@pytest.mark.parametrize(("setting", "languages", "expected"), [
    ("auto", [], False), ("auto", ["en"], False), ("auto", ["en", "es"], True), ("auto", ["de"], True),
    ("never", ["en", "es"], False), ("always", [], True),
])
def test_which_stores_the_multilingual_base_serves(settings, setting, languages, expected):
    settings.MULTILINGUAL_BASE = setting
    assert bases.multilingual(languages) is expected


# --- answering, with the real encoders ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_spanish_question_gets_the_entrys_spanish_answer():
    tenant = TenantFactory(languages=["en", "es"])
    KnowledgeEntryFactory(tenant=tenant, **SHIPPING, translations={"es": SHIPPING_ES})
    KnowledgeEntryFactory(tenant=tenant, **PAYPAL)
    outcome, reply = _ask(tenant, "¿Cuántos días tarda en llegar mi pedido?")
    assert outcome == "answered"
    assert reply.text == SHIPPING_ES["answer"]
    outcome, reply = _ask(tenant, "How many days until my order arrives?")
    assert reply.text == SHIPPING["answer"]  # the main language reads the main version


@pytest.mark.django_db(transaction=True)
def test_a_question_answered_only_in_english_goes_to_a_person_by_default():
    tenant = TenantFactory(languages=["en", "es"])
    KnowledgeEntryFactory(tenant=tenant, **PAYPAL)
    KnowledgeEntryFactory(tenant=tenant, **SHIPPING, translations={"es": SHIPPING_ES})
    outcome, reply = _ask(tenant, "¿Puedo pagar con PayPal?")
    assert outcome == "handed_off"
    message = Message.objects.filter(sender=Message.Sender.VISITOR).latest("id")
    conversation = message.conversation
    assert (conversation.handoff_code, conversation.handoff_reason) == (HandoffReason.UNTRANSLATED,
                                                                        "no answer written in es")


@pytest.mark.django_db(transaction=True)
def test_or_the_store_answers_in_its_main_language_with_a_line_saying_so():
    tenant = TenantFactory(languages=["en", "es"], untranslated=Tenant.Untranslated.MAIN_LANGUAGE)
    KnowledgeEntryFactory(tenant=tenant, **PAYPAL)
    outcome, reply = _ask(tenant, "¿Puedo pagar con PayPal?")
    assert outcome == "answered"
    assert reply.text == f"{untranslated_note('es', 'en')}\n\n{PAYPAL['answer']}"


@pytest.mark.django_db(transaction=True)
def test_a_message_too_short_to_tell_goes_on_in_the_conversations_language():
    tenant = TenantFactory(languages=["en", "es"], translations={"es": {"fallback_text": "Perdona, no te he entendido."}})
    KnowledgeEntryFactory(tenant=tenant, **SHIPPING, translations={"es": SHIPPING_ES})
    conversation = ConversationFactory(visitor__tenant=tenant)
    replies = []
    for i, text in enumerate(["¿Cuántos días tarda en llegar mi pedido?", "ok"]):
        message, _ = services.message_receive(conversation.id, text, f"c{i}")
        answer_message(conversation.id, message.id)
        replies.append(Message.objects.get(reply_to=message, sender=Message.Sender.BOT).text)
    assert Message.objects.get(text="ok").language == ""  # unclear on its own
    assert replies == [SHIPPING_ES["answer"], "Perdona, no te he entendido."]  # not the English fallback


@pytest.mark.django_db(transaction=True)
def test_a_store_listing_no_languages_answers_as_it_always_did(settings):
    tenant = TenantFactory(languages=[])
    KnowledgeEntryFactory(tenant=tenant, **SHIPPING, translations={"es": SHIPPING_ES})
    outcome, reply = _ask(tenant, "How long does shipping take to arrive?")
    assert (outcome, reply.text) == ("answered", SHIPPING["answer"])


@pytest.mark.django_db
def test_an_intents_reply_is_taken_in_the_language_asked_for():
    pairs = [(1, "thanks", "thank you so much", "You're welcome!", ""),
             (2, "thanks", "muchas gracias", "¡De nada!", "es"),
             (3, "greeting", "hola", "¡Hola!", "es")]
    index = IntentReplyIndex(pairs, sentence_encoder())
    assert index.best("thanks", "gracias por todo", {"es"}).reply == "¡De nada!"
    assert index.best("thanks", "gracias por todo", {"", "en"}).reply == "You're welcome!"
    assert index.best("greeting", "hello", {"", "en"}) is None
    assert index.best("greeting", "hello").language == "es"


def test_the_global_sentiment_model_reads_every_language_unless_told_never(settings):
    from inference.nlu_services import config_default

    settings.MULTILINGUAL_BASE = "auto"
    assert config_default("sentiment").base_encoder == bases.multilingual_path()
    assert config_default("intent").base_encoder == str(settings.BASE_ENCODER_PATH)  # no store: English
    settings.MULTILINGUAL_BASE = "never"
    assert config_default("sentiment").base_encoder == str(settings.BASE_ENCODER_PATH)


def test_an_agents_correction_answers_only_messages_in_its_language():
    from inference.corrections import Correction, reply_fits

    spanish = Correction(1, 2, "¿aceptan bitcoin?", "payment_methods", "No, solo tarjetas y PayPal.", True, "es")
    assert reply_fits(spanish, "es") and reply_fits(spanish, "")
    assert not reply_fits(spanish, "en")  # an English paraphrase gets the intent, not the Spanish words
    assert reply_fits(Correction(1, 2, "ok?", "", "Yes.", True, ""), "de")  # written before languages: any


@pytest.mark.django_db
def test_the_answer_path_reads_the_stores_languages_from_the_store_it_holds():
    """Once per message, twice (knowledge and intents' replies): not a query each when the store is in hand."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inference.intent_replies import intent_reply
    from inference.retrieval import knowledge_search

    tenant = TenantFactory(languages=["en", "es"])
    KnowledgeEntryFactory(tenant=tenant, **SHIPPING, translations={"es": SHIPPING_ES})
    knowledge_search(tenant.id, "warm up", languages=tenant.languages)
    with CaptureQueriesContext(connection) as queries:
        assert knowledge_search(tenant.id, "¿Cuánto tarda el envío?", languages=tenant.languages)[0].matched == "es"
        intent_reply(tenant.id, "thanks", "gracias", languages=tenant.languages)
    assert not [q for q in queries if '"chatbot_tenant"' in q["sql"]]
    with CaptureQueriesContext(connection) as queries:
        knowledge_search(tenant.id, "¿Cuánto tarda el envío?")  # without it: read
    assert [q for q in queries if '"chatbot_tenant"' in q["sql"]]

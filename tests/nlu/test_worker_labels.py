"""A real worker labels each visitor message with the active intent and sentiment models."""
import asyncio
import json

import pytest
import websockets

from chatbot.models import Message, SentimentExample, TrainingExample
from inference.nlu_services import intent_model_train, sentiment_model_train
from tests.factories import KnowledgeEntryFactory, TenantFactory
from tests.test_end_to_end import ORIGIN, next_frame, ws_url

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

SENTIMENT = {
    "negative": ["this is terrible", "i am so angry", "worst service ever", "awful, really awful"],
    "neutral": ["where is my order", "what are your hours", "i have a question", "order number 12"],
    "positive": ["thank you so much", "great service", "i love it", "you are wonderful"],
}


def test_worker_stores_intent_and_sentiment_on_the_message(tiny_data, tiny_config, live_server_url, celery_worker):
    tenant = TenantFactory(allowed_origins=[ORIGIN])
    KnowledgeEntryFactory(tenant=tenant, question="Where is my order?", answer="Orders ship within a day.")
    texts, labels = tiny_data
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=t, intent=i) for t, i in zip(texts, labels))
    SentimentExample.objects.bulk_create(
        SentimentExample(text=t, label=label) for label, items in SENTIMENT.items() for t in items
    )
    intent_version = intent_model_train(tenant, tiny_config, progress=False)
    sentiment_model_train(config=tiny_config, progress=False)

    async def chat():
        async with websockets.connect(ws_url(live_server_url, tenant.public_key), origin=ORIGIN) as ws:
            await next_frame(ws, "session", 10)
            await ws.send(json.dumps({"type": "message", "text": "where is my order", "client_id": "l-1"}))
            ack = await next_frame(ws, "ack", 10)
            await next_frame(ws, "message")  # the bot's answer or a hand-off note: labelling came first
            return ack

    ack = asyncio.run(chat())
    message = Message.objects.get(pk=ack["message"]["id"])
    assert message.intent in set(labels) | {"out_of_scope"}
    assert 0.0 <= message.intent_confidence <= 1.0
    assert message.sentiment in SENTIMENT
    assert 0.0 <= message.sentiment_confidence <= 1.0
    assert intent_version.is_active


def test_a_labelled_message_no_knowledge_entry_covers_gets_its_intents_own_reply(tiny_data, tiny_config):
    """Before a responder is trained, the tenant's example replies answer what the knowledge base does not;
    a reply naming an order number belongs to its own message and is never reused."""
    from chatbot.conversations import services
    from inference.answer import answer_message
    from tests.factories import ConversationFactory

    conversation = ConversationFactory(visitor__tenant__min_intent_confidence=0.0)
    tenant = conversation.tenant
    texts, labels = tiny_data
    rows = TrainingExample.objects.bulk_create(
        TrainingExample(tenant=tenant, text=t, intent=i) for t, i in zip(texts, labels))
    firsts = {}
    for row in rows:
        firsts.setdefault(row.intent, row)
    for intent, row in firsts.items():
        row.response = f"the reply for {intent}"
        row.save()
    TrainingExample.objects.create(tenant=tenant, text="hello, order NW-123456?", intent="greeting",
                                   response="Hello! Order NW-123456 ships today.")
    intent_model_train(tenant, tiny_config, progress=False)

    def answered(text: str, client_id: str) -> Message:
        message, _ = services.message_receive(conversation.id, text, client_id)
        assert answer_message(conversation.id, message.id) == "answered"
        message.refresh_from_db()
        return message

    message = answered(firsts["greeting"].text, "c1")
    reply = Message.objects.get(reply_to=message)
    assert message.intent == "greeting"
    assert reply.text == "the reply for greeting" and reply.model_version == "intent-reply-minilm"
    assert reply.grounding[0]["example"] == firsts["greeting"].id and reply.grounding[0]["score"] > 0.9

    firsts["greeting"].response = "Hi there, welcome back!"  # an edited reply is used at once
    firsts["greeting"].save()
    message = answered(firsts["greeting"].text, "c2")
    assert Message.objects.get(reply_to=message).text == "Hi there, welcome back!"


def test_replies_that_name_values_or_names_of_their_own_message_are_not_reused():
    from inference.intent_replies import reply_is_generic

    assert reply_is_generic("Thanks a lot!", "You're very welcome! Anything else?")
    assert not reply_is_generic("where is NW-123456", "Order NW-123456 ships today.")
    assert not reply_is_generic("email me", "We'll write to jo@example.com")
    assert not reply_is_generic("tracking?", "Track it at https://northwind.example/track")
    assert not reply_is_generic("How long does delivery to Ohio take?", "Shipping to Ohio takes 3-5 days.")
    assert not reply_is_generic("my Basecamp tent broke", "Sorry your basecamp tent broke!")
    assert reply_is_generic("Hello there! I'm Jo.", "Hi! How can I help?")  # sentence starts are not names

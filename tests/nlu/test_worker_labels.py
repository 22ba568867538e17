"""A real worker labels each visitor message with the active intent and sentiment models."""
import asyncio
import json

import pytest
import websockets

from chatbot.models import Message, SentimentExample, TrainingExample
from nlu.services import intent_model_train, sentiment_model_train
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

"""Evaluation sets: the frozen set is drawn once (stratified, deterministic, under a lock) and never
trained on; every agent correction grows the corrections set at once."""
import threading
from collections import Counter

import pytest
from django.db import connection

from chatbot.learning import evalsets

from chatbot.conversations import services
from chatbot.models import EvalExample, KnowledgeEntry, Message, SentimentExample, TrainingExample
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)
INTENT, RESPONDER, SENTIMENT = "intent", "responder", "sentiment"


def examples(tenant, counts: dict[str, int], response: bool = False) -> None:
    TrainingExample.objects.bulk_create(
        TrainingExample(tenant=tenant, text=f"{label} question number {i}", intent=label,
                        response=f"answer about {label}" if response else "")
        for label, n in counts.items() for i in range(n))


def test_frozen_set_is_stratified_keeps_small_labels_for_training_and_caps(settings):
    settings.EVAL_FROZEN_FRACTION, settings.EVAL_FROZEN_MAX = 0.2, 400
    tenant = TenantFactory()
    examples(tenant, {"refund": 40, "order": 20, "hours": 3, "rare": 2})
    drawn = evalsets.frozen_ensure(tenant, INTENT)
    assert Counter(e.label for e in drawn) == {"refund": 8, "order": 4, "hours": 1}  # rare (2) keeps both
    assert all(e.split == "frozen" and e.tenant_id == tenant.pk for e in drawn)

    other = TenantFactory()
    examples(other, {f"label{k}": 10 for k in range(6)})
    settings.EVAL_FROZEN_MAX = 4
    capped = evalsets.frozen_ensure(other, INTENT)
    assert len(capped) == 4 and all(n == 1 for n in Counter(e.label for e in capped).values())


def test_frozen_set_is_drawn_once_deterministically_and_never_redrawn(settings):
    settings.EVAL_FROZEN_FRACTION = 0.25
    first = TenantFactory()
    examples(first, {"refund": 12, "order": 12})
    drawn = [e.text for e in evalsets.frozen_ensure(first, INTENT)]
    EvalExample.objects.filter(tenant=first).delete()
    assert [e.text for e in evalsets.frozen_ensure(first, INTENT)] == drawn  # same data, same draw
    examples(first, {"refund": 30, "hours": 30})  # more data later: the set stays what it was
    again = evalsets.frozen_ensure(first, INTENT)
    assert [e.text for e in again] == drawn
    assert EvalExample.objects.filter(tenant=first, kind=INTENT, split="frozen").count() == len(drawn)
    assert evalsets.frozen_keys(first, INTENT) == {evalsets.text_key(t) for t in drawn}


def test_concurrent_first_draws_make_one_set(settings):
    settings.EVAL_FROZEN_FRACTION = 0.25
    tenant = TenantFactory()
    examples(tenant, {"refund": 20, "order": 20})
    errors = []
    barrier = threading.Barrier(4)

    def draw():
        try:
            barrier.wait(timeout=10)
            evalsets.frozen_ensure(tenant.pk, INTENT)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert EvalExample.objects.filter(tenant=tenant, kind=INTENT, split="frozen").count() == 10


def test_responder_and_sentiment_sets_draw_from_their_own_data(settings):
    settings.EVAL_FROZEN_FRACTION = 0.34
    tenant = TenantFactory()
    examples(tenant, {"refund": 6}, response=True)
    examples(tenant, {"greeting": 6})  # no reply: not responder data
    KnowledgeEntry.objects.bulk_create(KnowledgeEntry(tenant=tenant, question=f"fact {i}?", answer=f"Fact {i}.")
                                       for i in range(3))
    drawn = evalsets.frozen_ensure(tenant, RESPONDER)
    assert {e.label for e in drawn} == {"refund", ""} and all(e.reply for e in drawn)
    assert len(drawn) == 3  # two of six refunds, one of three facts
    SentimentExample.objects.bulk_create(SentimentExample(text=f"{y} text {i}", label=y)
                                         for y in ("negative", "neutral", "positive") for i in range(3))
    sentiment = evalsets.frozen_ensure(None, SENTIMENT)
    assert sorted(e.label for e in sentiment) == ["negative", "neutral", "positive"]
    assert all(e.tenant_id is None for e in sentiment)


def bot_reply(tenant, text="wher is my parcel"):
    conversation = ConversationFactory(tenant=tenant)
    asked = MessageFactory(conversation=conversation, sender=Message.Sender.VISITOR, text=text, intent="greeting")
    return MessageFactory(conversation=conversation, sender=Message.Sender.BOT, text="Hi!", reply_to=asked)


def test_each_agent_correction_grows_the_corrections_set_at_once():
    tenant = TenantFactory()
    agent = agent_of(tenant)
    reply = bot_reply(tenant)
    services.feedback_agent_record(agent, reply.id, "down", correct_intent="order_status")
    assert [(e.text, e.label, e.reply) for e in evalsets.corrections_set(tenant, INTENT)] == [
        ("wher is my parcel", "order_status", "")]
    assert evalsets.corrections_set(tenant, RESPONDER) == []  # no reply corrected yet

    services.feedback_agent_record(agent, reply.id, correct_reply="It ships tomorrow.")
    [example] = evalsets.corrections_set(tenant, RESPONDER)
    assert (example.label, example.reply) == ("order_status", "It ships tomorrow.")
    assert len(evalsets.corrections_set(tenant, INTENT)) == 1  # updated, not duplicated

    services.feedback_agent_record(agent_of(tenant), bot_reply(tenant, "refund pls").id, correct_intent="refund")
    assert [e.label for e in evalsets.corrections_set(tenant, INTENT)] == ["order_status", "refund"]
    assert evalsets.eval_counts(tenant, INTENT) == {"frozen": 0, "corrections": 2}


def test_a_taken_back_correction_leaves_the_set_and_sentiment_goes_to_the_global_set():
    tenant = TenantFactory()
    reply = bot_reply(tenant)
    feedback = services.feedback_agent_record(agent_of(tenant), reply.id, "down", correct_intent="order_status")
    feedback.corrected_sentiment = "negative"
    feedback.save()
    evalsets.correction_add(feedback.pk)
    assert [e.label for e in evalsets.corrections_set(None, SENTIMENT)] == ["negative"]
    feedback.corrected_intent = ""
    feedback.save()
    evalsets.correction_add(feedback.pk)
    assert evalsets.corrections_set(tenant, INTENT) == []
    assert len(evalsets.corrections_set(None, SENTIMENT)) == 1

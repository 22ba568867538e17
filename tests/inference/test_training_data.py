"""The training-data builder on the real database: every source lands, rated-down replies never become
targets, duplicates merge and corrections override, the frozen set stays out, personal data is scrubbed,
and the hash follows the data."""
import pytest

from chatbot.models import (
    AssistSuggestion,
    EvalExample,
    Feedback,
    Message,
    SentimentExample,
    TrainingExample,
)
from inference.training_data import Row, rows_hash, training_data
from tests.factories import ConversationFactory, KnowledgeEntryFactory, MessageFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

V, B, A, S = Message.Sender.VISITOR, Message.Sender.BOT, Message.Sender.AGENT, Message.Sender.SYSTEM


class Chat:
    """A conversation written turn by turn; `say` returns the message."""

    def __init__(self, tenant):
        self.conversation = ConversationFactory(visitor__tenant=tenant)
        self.seq = 0

    def say(self, sender, text, **fields):
        self.seq += 1
        return MessageFactory(conversation=self.conversation, seq=self.seq, sender=sender, text=text, **fields)

    def exchange(self, asked, replied, intent=""):
        """A visitor message (labelled `intent`) and the bot's reply to it."""
        visitor = self.say(V, asked, intent=intent)
        return visitor, self.say(B, replied, reply_to=visitor)


def feedback(message, source=Feedback.Source.AGENT, **fields):
    agent = UserFactory() if source == Feedback.Source.AGENT else None
    return Feedback.objects.create(message=message, source=source, agent=agent, **fields)


def pairs(data):
    return {(r.text, r.reply) for r in data.rows}


def labels(data):
    return {(r.text, r.label) for r in data.rows}


def test_every_responder_source_lands(tenant):
    KnowledgeEntryFactory(tenant=tenant, question="Do you ship to Canada?", answer="Yes, in 5-8 days.")
    TrainingExample.objects.create(tenant=tenant, text="can I pay with paypal", intent="payment",
                                   response="Yes, PayPal works at checkout.")
    TrainingExample.objects.create(tenant=tenant, text="hello", intent="greeting")  # no reply: intent only
    taken = Chat(tenant)
    taken.say(V, "my parcel is late")
    taken.say(S, "Handing you over to our team.")
    taken.say(A, "Sorry! It ships tomorrow.")
    taken.say(A, "Anything else?")  # a second agent message answers nothing new
    taken.say(A, "customer seems upset", private=True)
    chat = Chat(tenant)
    _, corrected = chat.exchange("can I return worn shoes", "We sell shoes.", intent="product")
    feedback(corrected, rating="down", correction="Unworn shoes only, within 30 days.")
    _, liked = chat.exchange("what are your hours", "9am-6pm ET, Monday to Friday.", intent="hours")
    feedback(liked, source=Feedback.Source.VISITOR, rating="up")
    assisted = Chat(tenant)
    asked = assisted.say(V, "do gift cards expire")
    sent = assisted.say(A, "Never, they never expire.")
    AssistSuggestion.objects.create(conversation=assisted.conversation, message=asked, texts=["Never."],
                                    outcome=AssistSuggestion.Outcome.EDITED, chosen=0, reply=sent)

    data = training_data(tenant, "responder")

    assert pairs(data) == {
        ("Do you ship to Canada?", "Yes, in 5-8 days."),
        ("can I pay with paypal", "Yes, PayPal works at checkout."),
        ("my parcel is late", "Sorry! It ships tomorrow."),
        ("can I return worn shoes", "Unworn shoes only, within 30 days."),
        ("what are your hours", "9am-6pm ET, Monday to Friday."),
        ("do gift cards expire", "Never, they never expire."),
    }
    assert data.counts == {"agent_reply": 1, "assist": 1, "corrected_reply": 1, "example": 1, "knowledge": 1,
                           "rated_up": 1}
    by_text = {r.text: r for r in data.rows}
    assert by_text["can I return worn shoes"].label == "product" and by_text["can I return worn shoes"].weight > 1
    assert by_text["what are your hours"].history == (("visitor", "can I return worn shoes"), ("bot", "We sell shoes."))
    assert by_text["my parcel is late"].history == ()


def test_intent_rows_are_examples_and_corrected_intents(tenant):
    TrainingExample.objects.create(tenant=tenant, text="where is my parcel", intent="order_status")
    TrainingExample.objects.create(tenant=tenant, text="no label yet")
    _, reply = Chat(tenant).exchange("I want my money back", "Here is how to track it.", intent="order_status")
    feedback(reply, rating="down", corrected_intent="refund")
    other = TenantFactory()
    _, elsewhere = Chat(other).exchange("not ours", "…")
    feedback(elsewhere, corrected_intent="greeting")

    data = training_data(tenant, "intent")

    assert labels(data) == {("where is my parcel", "order_status"), ("I want my money back", "refund")}
    assert data.counts == {"corrected_intent": 1, "example": 1}
    assert all(r.reply == "" for r in data.rows)


def test_sentiment_global_takes_every_tenants_corrections_and_the_base_data(tenant):
    SentimentExample.objects.create(text="I love it", label="positive")
    _, reply = Chat(tenant).exchange("this is taking forever", "Sorry!")
    feedback(reply, corrected_sentiment="negative")
    other = TenantFactory()
    _, reply2 = Chat(other).exchange("ok thanks", "You're welcome.")
    feedback(reply2, corrected_sentiment="neutral")
    _, bad = Chat(other).exchange("whatever", "…")
    feedback(bad, corrected_sentiment="furious")  # not a sentiment label

    everyone = training_data(None, "sentiment")
    assert labels(everyone) == {("I love it", "positive"), ("this is taking forever", "negative"),
                                ("ok thanks", "neutral")}
    assert everyone.counts == {"corrected_sentiment": 2, "sentiment_example": 1}
    assert labels(training_data(tenant, "sentiment")) == {("I love it", "positive"),
                                                          ("this is taking forever", "negative")}


def test_a_reply_rated_down_is_never_a_target(tenant):
    KnowledgeEntryFactory(tenant=tenant, question="How do returns work?", answer="Returns are free for 30 days.")
    chat = Chat(tenant)
    _, reply = chat.exchange("how do returns work", "Returns are free for 30 days.")
    feedback(reply, source=Feedback.Source.VISITOR, rating="down")
    feedback(reply, rating="up")  # one agent liked it: a down rating still wins
    _, other = chat.exchange("do you sell socks", "Yes, merino socks.")
    feedback(other, source=Feedback.Source.VISITOR, rating="down")

    data = training_data(tenant, "responder")

    assert data.rows == []
    assert data.excluded["rated_down"] == 1  # the knowledge entry's answer to that very question


def test_duplicates_merge_and_a_correction_overrides_older_labels(tenant):
    TrainingExample.objects.create(tenant=tenant, text="Where is my parcel?", intent="shipping")
    TrainingExample.objects.create(tenant=tenant, text="where is my  parcel", intent="shipping")
    TrainingExample.objects.create(tenant=tenant, text="hi", intent="greeting")
    TrainingExample.objects.create(tenant=tenant, text="Hi!", intent="greeting")
    _, reply = Chat(tenant).exchange("where is my parcel", "Shipping costs $5.", intent="shipping")
    feedback(reply, rating="down", corrected_intent="order_status")

    data = training_data(tenant, "intent")

    assert sorted((r.text.lower().strip("!?"), r.label) for r in data.rows) == [
        ("hi", "greeting"), ("where is my parcel", "order_status")]
    assert data.excluded == {"overridden": 2, "duplicate": 1}

    # A label the store gives after the correction stands beside it.
    TrainingExample.objects.create(tenant=tenant, text="where is my parcel", intent="tracking")
    assert {r.label for r in training_data(tenant, "intent").rows if "parcel" in r.text} == {
        "order_status", "tracking"}


def test_frozen_evaluation_texts_are_never_trained_on(tenant):
    TrainingExample.objects.create(tenant=tenant, text="Where is my parcel?", intent="order_status")
    TrainingExample.objects.create(tenant=tenant, text="cancel my order", intent="cancel")
    _, reply = Chat(tenant).exchange("WHERE is my parcel", "…")
    feedback(reply, corrected_intent="order_status")
    EvalExample.objects.create(tenant=tenant, kind="intent", split="frozen", text="where is my parcel",
                               label="order_status")
    EvalExample.objects.create(tenant=tenant, kind="intent", split="corrections", text="cancel my order",
                               label="cancel")  # the corrections set is trained on
    other = TenantFactory()
    EvalExample.objects.create(tenant=other, kind="intent", split="frozen", text="cancel my order", label="cancel")
    EvalExample.objects.create(tenant=tenant, kind="responder", split="frozen", text="cancel my order")

    data = training_data(tenant, "intent")

    assert labels(data) == {("cancel my order", "cancel")}
    assert data.excluded["frozen"] == 2


def test_personal_data_is_scrubbed_in_texts_replies_and_context(tenant):
    KnowledgeEntryFactory(tenant=tenant, question="How do I reach you?",
                          answer="Email help@shop.example or call 1-800-555-0142.")
    TrainingExample.objects.create(tenant=tenant, text="I'm mia@example.com, where is NW-482913?",
                                   intent="order_status", response="Order NW-482913 ships today, Mia.")
    chat = Chat(tenant)
    chat.say(V, "my phone is (415) 555-2671")
    chat.say(V, "ship to 42 Baker Street instead")
    chat.say(A, "Done: 42 Baker Street. We'll text (415) 555-2671. Questions? help@shop.example")

    rows = training_data(tenant, "responder").rows
    everything = " ".join(t for r in rows for t in (r.text, r.reply, *[turn for _, turn in r.history]))

    for value in ("mia@example.com", "NW-482913", "555-2671", "42 Baker Street"):
        assert value not in everything
    assert ("I'm [email], where is [order]?", "Order [order] ships today, Mia.") in pairs(training_data(
        tenant, "responder"))
    agent_row = next(r for r in rows if r.source == "agent_reply")
    assert agent_row.text == "ship to [address] instead"
    assert agent_row.history == (("visitor", "my phone is [phone]"),)
    # The store's own contact details are not personal data: they stay, so the responder learns them.
    assert agent_row.reply == "Done: [address]. We'll text [phone]. Questions? help@shop.example"
    assert ("How do I reach you?", "Email help@shop.example or call 1-800-555-0142.") in pairs(
        training_data(tenant, "responder"))
    assert "mia@example.com" not in " ".join(r.text for r in training_data(tenant, "intent").rows)


def test_hash_is_stable_and_follows_the_data(tenant):
    TrainingExample.objects.create(tenant=tenant, text="hi", intent="greeting")
    example = TrainingExample.objects.create(tenant=tenant, text="bye", intent="goodbye")
    first = training_data(tenant, "intent")
    assert training_data(tenant, "intent").sha256 == first.sha256
    assert len(first.sha256) == 64
    assert rows_hash(reversed(first.rows)) == first.sha256  # order of reading does not matter

    example.intent = "farewell"
    example.save()
    relabelled = training_data(tenant, "intent").sha256
    assert relabelled != first.sha256
    TrainingExample.objects.create(tenant=tenant, text="thanks", intent="thanks")
    assert training_data(tenant, "intent").sha256 not in (first.sha256, relabelled)
    assert rows_hash([Row("a", "x")]) != rows_hash([Row("a", "y")])


def test_queries_do_not_grow_with_the_data(tenant, django_assert_max_num_queries):
    for i in range(15):
        chat = Chat(tenant)
        _, reply = chat.exchange(f"question {i} about NW-10000{i}", f"answer {i}", intent="order_status")
        feedback(reply, rating="down", correction=f"better answer {i}", corrected_intent="tracking")
        chat.say(V, f"follow-up {i}")
        chat.say(A, f"agent answer {i}")
        KnowledgeEntryFactory(tenant=tenant)
    with django_assert_max_num_queries(6):
        data = training_data(tenant, "responder")
    assert data.counts == {"agent_reply": 15, "corrected_reply": 15, "knowledge": 15}
    with django_assert_max_num_queries(4):
        assert training_data(tenant, "intent").counts == {"corrected_intent": 15}


def test_unknown_kind_and_missing_tenant_are_refused(tenant):
    with pytest.raises(ValueError, match="unknown model kind"):
        training_data(tenant, "vibes")
    with pytest.raises(ValueError, match="belongs to a tenant"):
        training_data(None, "intent")
    assert training_data(tenant.slug, "intent").rows == []

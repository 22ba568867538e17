"""Transcript review and the review queue through the Django test client: each filter narrows the
conversations as it says, search, who may open the pages, another store's data never shows, and the
queue puts the weakest items first and loses an item once it is labelled."""
from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.review import queries as review, services as review_services

from chatbot.conversations import services
from chatbot.errors import NotFound, PermissionDenied, ServiceError
from chatbot.models import AgentMembership, Conversation, Feedback, Message, TrainingExample
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, VisitorFactory, handoff_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
B_SECRET = "bravo-private-words"
S = Conversation.Status


def member(tenant, username: str, role: str = "agent", name: str | None = None):
    membership, _ = services.agent_add(tenant, username, password=PASSWORD, role=role, name=name)
    return membership.user


def conversation(tenant, *, status=S.BOT, handoff_reason="", csat=None, language="", days_ago=0, **fields):
    """A conversation; one handed off (`handoff_reason`, the policy's words) gets the code of its reason."""
    fields.setdefault("handoff_code", handoff_code(handoff_reason))
    conv = ConversationFactory(visitor=VisitorFactory(tenant=tenant), status=status, handoff_reason=handoff_reason,
                               csat=csat, language=language, **fields)
    if days_ago:
        Conversation.objects.filter(pk=conv.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return conv


def say(conv, seq: int, sender: str, text: str, **fields) -> Message:
    """A message; a hand-off notice or fallback reply (`handoff_reason`) gets the code of its reason."""
    fields.setdefault("handoff_code", handoff_code(fields.get("handoff_reason", ""), sender))
    message = MessageFactory(conversation=conv, seq=seq, sender=sender, text=text, **fields)
    Conversation.objects.filter(pk=conv.pk).update(last_seq=seq, last_message_text=text[:200],
                                                   last_message_sender=sender, last_message_at=timezone.now())
    return message


def build_world() -> dict:
    """Store alpha (manager Mia, agent Ada) with four conversations that differ in every filter, and store
    bravo with a secret one."""
    alpha = TenantFactory(name="Alpha Outdoor", slug="alpha", languages=["en"], min_intent_confidence=0.45)
    bravo = TenantFactory(name="Bravo Hidden Store", slug="bravo")
    mia = member(alpha, "mia", role="manager", name="Mia Manager")
    ada = member(alpha, "ada", name="Ada Agent")
    bob = member(bravo, "bob", role="manager", name="Bob Bravo")
    for intent in ("shipping", "order_status", "refund", "thanks"):
        TrainingExample.objects.create(tenant=alpha, text=f"example {intent}", intent=intent)
    TrainingExample.objects.create(tenant=bravo, text="bravo example", intent="bravo_only_intent")

    # c1: Spanish, handed off on request, an agent answered, resolved with CSAT 1.
    c1 = conversation(alpha, status=S.RESOLVED, handoff_reason="visitor asked for a person", csat=1, language="es",
                      days_ago=1)
    asked1 = say(c1, 1, "visitor", "¿Hacen envíos a México?", intent="shipping", intent_confidence=0.9,
                 sentiment="neutral", language="es")
    handoff1 = say(c1, 2, "system", "I'm handing you over.", reply_to=asked1,
                   handoff_reason="visitor asked for a person")
    say(c1, 3, "agent", "Sí, enviamos a México.", author=ada)
    # c2: English, the bot answered near the intent threshold, the visitor gave it a thumbs down.
    c2 = conversation(alpha, status=S.BOT, language="en", days_ago=2)
    asked2 = say(c2, 1, "visitor", "where is my order NW-100200", intent="order_status", intent_confidence=0.55,
                 sentiment="negative", language="en", label_versions={"intent": "int-v1"})
    reply2 = say(c2, 2, "bot", "Your order left our warehouse today.", reply_to=asked2,
                 model_version="retrieval-minilm", score=0.7, grounding=[{"entry": 1, "question": "Where is my order?",
                                                                          "score": 0.7}])
    Feedback.objects.create(message=reply2, source="visitor", rating="down", original_reply=reply2.text,
                            original_intent="order_status")
    # c3: a negative streak, low intent confidence: handed off, waiting, ten days old.
    c3 = conversation(alpha, status=S.WAITING, handoff_reason="low intent confidence (0.30)", language="en",
                      days_ago=10)
    say(c3, 1, "visitor", "this is useless", intent="complaint", intent_confidence=0.8, sentiment="negative")
    say(c3, 2, "bot", "I'm really sorry about this.", reply_to=c3.messages.get(seq=1), model_version="complaint-rule")
    asked3 = say(c3, 3, "visitor", "I want a refund now", intent="refund", intent_confidence=0.30,
                 sentiment="negative", language="en")
    handoff3 = say(c3, 4, "system", "I'm handing you over.", reply_to=asked3,
                   handoff_reason="low intent confidence (0.30)")
    # c4: a happy visitor, answered by a responder, rated 5.
    c4 = conversation(alpha, status=S.RESOLVED, csat=5, language="en")
    asked4 = say(c4, 1, "visitor", "thanks, great service", intent="thanks", intent_confidence=0.97,
                 sentiment="positive", language="en")
    reply4 = say(c4, 2, "bot", "You're welcome!", reply_to=asked4, model_version="responder:r-2", score=0.9)
    Feedback.objects.create(message=reply4, source="visitor", rating="up", original_reply=reply4.text)
    # Bravo's conversation, with words that must never show in alpha's pages.
    c5 = conversation(bravo, status=S.WAITING, handoff_reason="low intent confidence (0.10)", csat=None)
    asked5 = say(c5, 1, "visitor", f"{B_SECRET} refund", intent="refund", intent_confidence=0.1,
                 sentiment="negative", language="en")
    say(c5, 2, "system", "Handing over.", reply_to=asked5, handoff_reason="low intent confidence (0.10)")
    return {
        "alpha": alpha, "bravo": bravo, "mia": mia, "ada": ada, "bob": bob, "c1": c1, "c2": c2, "c3": c3, "c4": c4,
        "c5": c5, "handoff1": handoff1, "reply2": reply2, "handoff3": handoff3, "reply4": reply4,
    }


@pytest.fixture
def world():
    return build_world()


def logged_in(client, user):
    client.force_login(user)
    return client


def listed(client, query: str = "") -> set[int]:
    response = client.get(f"/console/review/?{query}")
    assert response.status_code == 200, response.content[:500]
    return {row["c"]["id"] for row in response.context["rows"]}


# --- who may open the pages -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/console/review/", "/console/review/queue/", "/console/export/?format=csv"])
def test_an_agent_who_manages_no_store_gets_403(client, world, url):
    response = logged_in(client, world["ada"]).get(url)
    assert response.status_code == 403
    assert "managers" in response.content.decode()


def test_an_agent_gets_403_on_a_conversation_of_her_store_and_labelling(client, world):
    logged_in(client, world["ada"])
    assert client.get(f"/console/review/{world['c2'].id}/").status_code == 403
    response = client.post(f"/console/review/queue/{world['reply2'].id}/label/", {"intent": "refund"})
    assert response.status_code == 403
    assert not Message.objects.get(pk=world["reply2"].pk).reviewed_at


def test_review_pages_need_a_login(client):
    for url in ("/console/review/", "/console/review/queue/", "/console/export/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_nav_shows_review_to_managers_only(client, world):
    assert 'href="/console/review/"' in logged_in(client, world["mia"]).get("/console/canned/").content.decode()
    assert 'href="/console/review/"' not in logged_in(client, world["ada"]).get("/console/canned/").content.decode()


def test_a_manager_sees_only_her_stores(client, world):
    logged_in(client, world["mia"])
    assert listed(client) == {world[c].id for c in ("c1", "c2", "c3", "c4")}
    for url in ("/console/review/", "/console/review/queue/", f"/console/review/{world['c2'].id}/",
                "/console/review/?q=refund", "/console/review/?intent=bravo_only_intent"):
        html = client.get(url).content.decode()
        assert B_SECRET not in html and "Bravo Hidden Store" not in html and "bravo_only_intent" not in html, url


def test_another_stores_slug_answers_like_a_missing_one(client, world):
    logged_in(client, world["mia"])
    for page in ("/console/review/", "/console/review/queue/", "/console/export/"):
        theirs = client.get(f"{page}?store=bravo")
        nowhere = client.get(f"{page}?store=no-such-store")
        assert theirs.status_code == nowhere.status_code == 404
        assert theirs.content == nowhere.content


def test_a_manager_of_one_store_and_agent_of_another_cannot_review_the_other(client, world):
    AgentMembership.objects.create(user=world["mia"], tenant=world["bravo"])  # she answers there, not manages
    logged_in(client, world["mia"])
    assert world["c5"].id not in listed(client)
    assert client.get("/console/review/?store=bravo").status_code == 403
    assert client.get(f"/console/review/{world['c5'].id}/").status_code == 403


# --- filters --------------------------------------------------------------------------------------


def filter_cases(world) -> list[tuple[str, set[str]]]:
    today = timezone.localdate()
    return [
        ("status=resolved", {"c1", "c4"}),
        ("status=waiting", {"c3"}),
        ("handed_off=yes", {"c1", "c3"}),
        ("handed_off=no", {"c2", "c4"}),
        ("reason=low_confidence", {"c3"}),
        ("handed_off=yes&reason=asked_for_person", {"c1"}),
        ("reason=low+intent+confidence", {"c3"}),  # a link made before the codes: its text is read as its code
        ("reason=language", set()),
        ("intent=refund", {"c3"}),
        ("intent=order_status", {"c2"}),
        ("sentiment=negative", {"c2", "c3"}),
        ("sentiment=positive", {"c4"}),
        ("rating=down", {"c2"}),
        ("rating=up", {"c4"}),
        ("csat=low", {"c1"}),
        ("csat=5", {"c4"}),
        ("csat=high", {"c4"}),
        ("csat=none", {"c2", "c3"}),
        ("language=es", {"c1"}),
        ("language=en", {"c2", "c3", "c4"}),
        (f"date_from={(today - timedelta(days=3)).isoformat()}", {"c1", "c2", "c4"}),
        (f"date_to={(today - timedelta(days=5)).isoformat()}", {"c3"}),
        (f"date_from={(today - timedelta(days=2)).isoformat()}&date_to={(today - timedelta(days=1)).isoformat()}",
         {"c1", "c2"}),
        (f"agent={world['ada'].id}", {"c1"}),
        ("model=retrieval-minilm", {"c2"}),
        ("model=r-2", {"c4"}),
        ("model=int-v1", {"c2"}),
        ("model=complaint-rule", {"c3"}),
        ("store=alpha&status=resolved&csat=5", {"c4"}),
        ("sentiment=negative&handed_off=yes&language=en", {"c3"}),
    ]


def test_each_filter_narrows_to_exactly_the_matching_conversations(client, world):
    logged_in(client, world["mia"])
    for query, expected in filter_cases(world):
        assert listed(client, query) == {world[c].id for c in expected}, query


def test_filters_are_kept_in_the_page_for_bookmarks_and_the_export_link(client, world):
    html = logged_in(client, world["mia"]).get("/console/review/?sentiment=negative&language=en").content.decode()
    assert '<option value="negative" selected>' in html
    assert "/console/export/?sentiment=negative&amp;language=en&amp;format=csv&amp;rows=conversation" in html


@pytest.mark.parametrize("query, expected", [
    ("q=refund", {"c3"}),
    ("q=where+order", {"c2"}),  # every word, anywhere in a message
    ("q=%22my+order%22", {"c2"}),  # a phrase
    ("q=order+-warehouse", {"c2"}),  # the visitor's message has "order" without "warehouse" (its reply has both)
    ("q=M%C3%A9xico", {"c1"}),
    ("q=zebra", set()),
])
def test_full_text_search_in_messages(client, world, query, expected):
    assert listed(logged_in(client, world["mia"]), query) == {world[c].id for c in expected}


@pytest.mark.parametrize("query, detail", [
    ("status=closed", "`status` must be one of"),
    ("csat=9", "`csat` must be one of"),
    ("date_from=yesterday", "`date_from` must be a date"),
    ("date_from=2026-02-02&date_to=2026-01-01", "after"),
    ("agent=ada", "`agent` must be a user id"),
    ("language=spanish", "`language` must be a language code"),
    ("reason=visitor+asked", "`reason` must be one of asked_for_person, negative_sentiment"),
])
def test_a_filter_value_it_cannot_have_is_refused_with_400(client, world, query, detail):
    response = logged_in(client, world["mia"]).get(f"/console/review/?{query}")
    assert response.status_code == 400
    assert detail in response.content.decode()


def test_the_list_is_paginated(client, world, monkeypatch):
    monkeypatch.setattr(review, "PAGE_SIZE", 3)
    logged_in(client, world["mia"])
    first = client.get("/console/review/")
    second = client.get("/console/review/?page=2")
    ids = [r["c"]["id"] for r in first.context["rows"]] + [r["c"]["id"] for r in second.context["rows"]]
    assert len(first.context["rows"]) == 3 and sorted(ids) == sorted(world[c].id for c in ("c1", "c2", "c3", "c4"))
    assert 'rel="next"' in first.content.decode()


def test_the_transcript_shows_every_messages_labels_and_the_bots_why(client, world):
    response = logged_in(client, world["mia"]).get(f"/console/review/{world['c2'].id}/?back=%3Fsentiment%3Dnegative")
    html = response.content.decode()
    assert response.status_code == 200
    assert "where is my order NW-100200" in html and "Your order left our warehouse today." in html
    assert "intent order_status · 55%" in html and "negative" in html
    assert "retrieval-minilm" in html and "Where is my order?" in html  # the why: model and grounding
    assert "int-v1" in html  # the label model's version
    assert "Thumbs down · visitor" in html
    assert 'href="/console/review/?sentiment=negative"' in html  # back to the filtered list
    handoff = logged_in(client, world["mia"]).get(f"/console/review/{world['c3'].id}/").content.decode()
    assert "Hand-off: low intent confidence (0.30)" in handoff


def test_the_back_link_only_takes_a_query_string(client, world):
    html = logged_in(client, world["mia"]).get(
        f"/console/review/{world['c2'].id}/?back=https://evil.example/").content.decode()
    assert "evil.example" not in html


# --- the review queue -----------------------------------------------------------------------------


def queue_ids(user, store_ids=None) -> list[int]:
    return [m.id for m in review.queue(store_ids or review.managed_tenant_ids(user))]


def test_the_queue_ranks_the_weakest_first(world):
    items = list(review.queue(review.managed_tenant_ids(world["mia"])))
    # c3's hand-off: hand-off 3 + confidence 0.30 under 0.45: 3 + negative streak 2 = 8
    # c1's hand-off: hand-off 3 + CSAT 1: 4 = 7;  c2's reply: thumbs down 5 + 0.55 near 0.45: 1 = 6
    # c4's reply (confident, thumbs up, CSAT 5) and c3's complaint reply (confident) are not weak.
    assert [m.id for m in items] == [world["handoff3"].id, world["handoff1"].id, world["reply2"].id]
    assert [round(m.weakness, 2) for m in items] == [8.0, 7.0, 6.0]
    assert items[0].total == 3
    assert review.queue_reasons(items[0]) == [
        "hand-off", "low intent confidence (0.30, threshold 0.45)", "negative streak"]
    assert review.queue_reasons(items[2]) == ["thumbs down", "near the intent threshold (0.55, threshold 0.45)"]


def test_the_queue_page_lists_items_with_their_reasons_and_the_stores_intents(client, world):
    response = logged_in(client, world["mia"]).get("/console/review/queue/")
    html = response.content.decode()
    assert response.status_code == 200
    assert [row["item"].id for row in response.context["rows"]] == [
        world["handoff3"].id, world["handoff1"].id, world["reply2"].id]
    assert "3 items to review" in " ".join(html.replace("<strong>", "").replace("</strong>", "").split())
    assert "negative streak" in html and "thumbs down" in html
    assert '<option value="refund" selected>refund</option>' in html
    assert "bravo_only_intent" not in html and B_SECRET not in html


def test_labelling_an_item_stores_feedback_with_original_and_corrected_values_and_it_leaves_the_queue(client,
                                                                                                      world):
    logged_in(client, world["mia"])
    item = world["handoff3"]
    response = client.post(f"/console/review/queue/{item.id}/label/",
                           {"intent": "order_status", "sentiment": "neutral", "reply": "Let me check your order.",
                            "next": "/console/review/queue/?page=1"})
    assert response.status_code == 302 and response["Location"] == "/console/review/queue/?page=1"
    assert item.id not in queue_ids(world["mia"])
    feedback = Feedback.objects.get(message=item, source="agent")
    assert (feedback.agent, feedback.rating) == (world["mia"], "down")
    assert (feedback.original_intent, feedback.corrected_intent) == ("refund", "order_status")
    assert (feedback.original_sentiment, feedback.corrected_sentiment) == ("negative", "neutral")
    assert feedback.correction == "Let me check your order."
    assert feedback.original_reply == "I'm handing you over."
    reviewed = Message.objects.get(pk=item.pk)
    assert reviewed.reviewed_by == world["mia"] and reviewed.reviewed_at is not None


def test_labelling_a_bot_reply_writes_the_same_record_the_agent_console_does(client, world):
    reply = world["reply2"]
    response = logged_in(client, world["mia"]).post(
        f"/console/review/queue/{reply.id}/label/", {"intent": "order_status", "sentiment": "negative"},
        HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json()["ok"] is True
    feedback = Feedback.objects.get(message=reply, source="agent")
    # The labels confirm what the bot did: a thumbs up, the intent confirmed, no correction.
    assert (feedback.rating, feedback.corrected_intent, feedback.correction) == ("up", "order_status", "")
    assert (feedback.original_intent, feedback.original_reply) == ("order_status", reply.text)
    assert (feedback.original_sentiment, feedback.corrected_sentiment) == ("negative", "negative")
    # Relabelling updates the one record per reviewer, as services.feedback_agent_record keeps it.
    review_services.review_label(world["mia"], reply.id, intent="refund", reply="Refunds take 5 days.")
    feedback = Feedback.objects.get(message=reply, source="agent")
    assert (feedback.rating, feedback.corrected_intent, feedback.correction) == ("down", "refund",
                                                                                  "Refunds take 5 days.")
    assert reply.id not in queue_ids(world["mia"])


def test_a_label_must_be_one_of_the_stores_intents_and_sentiments(world):
    mia, item = world["mia"], world["reply2"]
    for labels in ({"intent": "bravo_only_intent"}, {"sentiment": "furious"}, {}, {"reply": "\x00"}):
        with pytest.raises(ServiceError):
            review_services.review_label(mia, item.id, **labels)
    assert item.id in queue_ids(mia)
    with pytest.raises(ServiceError):  # a visitor message is no queue item
        review_services.review_label(mia, world["reply2"].reply_to_id, intent="refund")


def test_labelling_refuses_other_stores_items_like_missing_ones_and_agents(client, world):
    theirs = world["c5"].messages.get(sender="system")
    with pytest.raises(NotFound):
        review_services.review_label(world["mia"], theirs.id, intent="refund")
    with pytest.raises(PermissionDenied):
        review_services.review_label(world["ada"], world["reply2"].id, intent="refund")
    logged_in(client, world["mia"])
    response = client.post(f"/console/review/queue/{theirs.id}/label/", {"intent": "refund"})
    missing = client.post("/console/review/queue/999999999/label/", {"intent": "refund"})
    assert response.status_code == missing.status_code == 404 and response.content == missing.content
    assert not Feedback.objects.filter(message=theirs).exists()


def test_a_bad_label_answers_400_with_the_reason(client, world):
    logged_in(client, world["mia"])
    response = client.post(f"/console/review/queue/{world['reply2'].id}/label/", {"sentiment": "furious"},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_sentiment"
    plain = client.post(f"/console/review/queue/{world['reply2'].id}/label/", {})
    assert plain.status_code == 400 and b"Give the right intent" in plain.content


def test_the_queue_never_redirects_off_site_after_a_label(client, world):
    response = logged_in(client, world["mia"]).post(
        f"/console/review/queue/{world['reply2'].id}/label/", {"intent": "refund", "next": "https://evil.example/"})
    assert response["Location"] == "/console/review/queue/"


def test_the_queue_scopes_to_one_store_and_a_superuser_sees_all(world):
    from tests.factories import UserFactory

    root = UserFactory(is_superuser=True, is_staff=True)
    ids = queue_ids(root)
    assert world["c5"].messages.get(sender="system").id in ids
    assert set(queue_ids(root, (world["alpha"].id,))) == set(queue_ids(world["mia"]))


def test_the_items_own_intent_is_a_valid_label_even_when_the_store_has_no_example_of_it(world):
    Message.objects.filter(pk=world["reply2"].reply_to_id).update(intent="legacy_intent")
    feedback = review_services.review_label(world["mia"], world["reply2"].id, intent="legacy_intent")
    assert (feedback.rating, feedback.original_intent, feedback.corrected_intent) == ("up", "legacy_intent",
                                                                                      "legacy_intent")


def test_a_deep_queue_page_is_empty_but_knows_the_length(world):
    ids = review.managed_tenant_ids(world["mia"])
    assert review.queue_page(ids, 1, 2)[1] == 3 and len(review.queue_page(ids, 2, 2)[0]) == 1
    assert review.queue_page(ids, 9, 2) == ([], 3)

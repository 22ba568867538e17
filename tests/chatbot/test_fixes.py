"""What to fix first: each kind of suggestion on hand-made data, the ranking, the stored groups of unanswered
questions and the button that asks the worker for new ones."""
import json

import pytest
from django.test import Client

from chatbot.review import fixes
from chatbot.models import KnowledgeEntry
from tests.chatbot.test_insights import PERIOD, Story, at
from tests.factories import TenantFactory, agent_of


@pytest.fixture(autouse=True)
def models_dir(settings, tmp_path):
    settings.MODELS_DIR = tmp_path
    return tmp_path


@pytest.fixture
def story(db):
    return Story(TenantFactory(name="Alpha Outdoor", slug="alpha"))


def test_unanswered_questions_are_fallbacks_and_handoffs_for_not_knowing(story):
    s = story
    c = s.conversation(at(0))
    fallback, _ = s.exchange(c, "Do you ship to Canada?", at(0), fallback=True)
    low = s.asks(s.conversation(at(1)), "Can I pay in bitcoin?", at(1))
    s.hand_off(low, "low intent confidence (0.21)")
    out_of_scope = s.asks(s.conversation(at(1)), "What's the capital of Peru?", at(1), intent="out_of_scope")
    s.hand_off(out_of_scope, "out-of-scope request")
    repeated = s.asks(s.conversation(at(2)), "blue tent stock?", at(2))
    s.hand_off(repeated, "2 fallbacks in a row")
    # Not questions the bot failed to know:
    s.exchange(c, "How long is shipping?", at(0, 11))  # answered
    s.hand_off(s.asks(s.conversation(at(2)), "A person please", at(2)), "visitor asked for a person")
    s.hand_off(s.asks(s.conversation(at(2)), "Awful!!", at(2)), "negative sentiment for 2 turns")
    s.exchange(s.conversation(at(9)), "Do you ship to Mexico?", at(9), fallback=True)  # after the period
    s.exchange(Story(TenantFactory()).conversation(at(0)), "Elsewhere?", at(0), fallback=True)

    found = fixes.unanswered_questions(s.tenant.id, PERIOD)

    assert {q["id"] for q in found} == {fallback.id, low.id, out_of_scope.id, repeated.id}
    assert found[0]["id"] == repeated.id  # newest first
    assert fixes.unanswered_questions(s.tenant.id, PERIOD, limit=2) == found[:2]


def test_intents_most_often_met_with_negative_sentiment_thumbs_down_or_handoff(story):
    s = story
    c = s.conversation(at(0))
    for i in range(4):  # refund: 3 of 5 messages went badly
        s.exchange(c, f"refund {i}", at(0, 10, i), intent="refund")
    s.message(c, "visitor", "refund angry", at(0, 11), intent="refund", sentiment="negative")
    _, down = s.exchange(c, "refund wrong", at(0, 12), intent="refund")
    s.rate(down, "down")
    s.hand_off(s.asks(s.conversation(at(1)), "refund?? unsure", at(1), intent="refund"), "low intent confidence (0.3)")
    # shipping: 1 of 2, via a hand-off
    s.exchange(c, "shipping time", at(0, 13), intent="shipping")
    s.hand_off(s.asks(s.conversation(at(1)), "shipping cost?", at(1), intent="shipping"), "low responder score (0.2)")
    # Not an intent's fault: asking for a person, out of scope; and a happy intent.
    s.hand_off(s.asks(s.conversation(at(1)), "human please", at(1), intent="human_agent"), "visitor asked for a person")
    s.hand_off(s.asks(s.conversation(at(1)), "weather?", at(1), intent="out_of_scope"), "out-of-scope request")
    s.hand_off(s.asks(s.conversation(at(1)), "a person for my order", at(1), intent="order_status"),
               "visitor asked for a person")
    s.exchange(c, "hours", at(0, 14), intent="hours")

    rows = fixes.problem_intents(s.tenant.id, PERIOD)

    assert [(r["intent"], r["problems"], r["total"], r["negative"], r["down"], r["handed_off"]) for r in rows] == [
        ("refund", 3, 7, 1, 1, 1), ("shipping", 1, 2, 0, 0, 1)]
    assert rows[0]["rate"] == round(3 / 7, 4)
    assert [e["text"] for e in rows[0]["examples"]] == ["refund?? unsure", "refund wrong", "refund angry"]
    assert rows[0]["examples"][0]["url"].startswith("/console/review/")


def test_knowledge_entries_whose_answers_were_rated_down(story):
    s = story
    returns = KnowledgeEntry.objects.create(tenant=s.tenant, question="Can I return an item?", answer="Yes, 30 days.")
    shipping = KnowledgeEntry.objects.create(tenant=s.tenant, question="How long is shipping?", answer="3-5 days.")
    hit = lambda entry, score=0.8: [{"entry": entry.id, "question": entry.question, "score": score}]  # noqa: E731
    c = s.conversation(at(0))
    for i in range(3):
        _, reply = s.exchange(c, f"return question {i}", at(0, 10, i), grounding=hit(returns) + hit(shipping, 0.3))
        if i:
            s.rate(reply, "down", source="agent", correction="You have 60 days since March." if i == 2 else "")
    _, reply = s.exchange(c, "shipping question", at(0, 11), grounding=hit(shipping))
    s.rate(reply, "up")
    # A fallback reply rated down is not its grounding entry's fault; nor an intent reply's.
    _, fallback = s.exchange(c, "gibberish", at(0, 12), grounding=hit(shipping, 0.1), fallback=True)
    s.rate(fallback, "down")
    _, own = s.exchange(c, "thanks", at(0, 13), grounding=[{"example": 3, "intent": "thanks", "score": 0.9}] + hit(
        shipping, 0.2), model_version="intent-reply-minilm")
    s.rate(own, "down")

    rows = fixes.downrated_knowledge(s.tenant.id, PERIOD)

    assert len(rows) == 1
    row = rows[0]
    assert (row["entry"], row["down"], row["answers"], row["question"]) == (returns.id, 2, 3, "Can I return an item?")
    assert [e["text"] for e in row["examples"]] == ["return question 2", "return question 1"]
    assert row["corrections"] == ["You have 60 days since March."]


def test_complaint_words_rise_above_what_everybody_says(story):
    s = story
    c = s.conversation(at(0))
    negative = ["I am still waiting for my parcel", "still waiting for my order, this is ridiculous",
                "Why am I still waiting for the refund", "parcel arrived broken", "the jacket arrived broken",
                "my order is late", "order never arrived"]
    for i, text in enumerate(negative):
        s.asks(c, text, at(0, 10, i), sentiment="negative")
    for i in range(20):
        s.asks(c, f"where is my order please {i}", at(1, 10, i), sentiment="neutral")
    s.asks(c, "waiting for my parcel happily", at(1, 11), sentiment="positive")
    # The visitor's words right after a thumbs down count as unhappy too, whatever their sentiment.
    q, reply = s.exchange(c, "what sizes?", at(2))
    s.rate(reply, "down")
    s.asks(c, "wrong answer, arrived broken again", at(2, 10, 1), sentiment="neutral")

    terms = fixes.complaint_terms(s.tenant.id, PERIOD)

    by_term = {t["term"]: t for t in terms}
    assert "still waiting" in by_term, terms
    assert "arrived broken" in by_term, terms
    assert by_term["still waiting"]["messages"] == 3
    assert by_term["arrived broken"]["messages"] == 3 and by_term["arrived broken"]["after_down"] == 1
    assert "order" not in by_term and "waiting" not in by_term  # everybody says it / a longer phrase covers it
    assert len(by_term["still waiting"]["examples"]) == 3


def test_suggestions_rank_every_kind_with_evidence_and_links(story):
    s = story
    entry = KnowledgeEntry.objects.create(tenant=s.tenant, question="Return policy?", answer="30 days.")
    c = s.conversation(at(0))
    for i in range(2):
        _, reply = s.exchange(c, f"return {i}", at(0, 10, i), intent="returns",
                              grounding=[{"entry": entry.id, "question": "Return policy?", "score": 0.7}])
        s.rate(reply, "down")
    fixes.clusters_store(s.tenant.id, {
        "computed_at": "2025-03-10T08:00:00+00:00", "from": "2025-03-03", "to": "2025-03-09", "questions": 7,
        "clusters": [
            {"label": "Do you ship to Canada?", "size": 6, "conversations": 5,
             "examples": [{"id": 1, "conversation": c.id, "text": "Do you ship to Canada?"}], "message_ids": [1]},
            {"label": "lonely", "size": 1, "conversations": 1, "examples": [], "message_ids": [2]},
        ]})

    items = fixes.suggestions(s.tenant, PERIOD)

    assert [(i["kind"], i["impact"]) for i in items] == [("unanswered", 6), ("knowledge", 2), ("intent", 2)]
    top = items[0]
    assert top["title"] == "Add a knowledge entry: “Do you ship to Canada?”"
    assert top["examples"][0]["url"] == f"/console/review/{c.id}/"
    assert "6 questions the bot could not answer, in 5 conversations" in top["evidence"]
    assert items[1]["title"] == "Rewrite the knowledge entry “Return policy?”"
    assert items[2]["link"].startswith("/console/review/?store=alpha&") and "intent=returns" in items[2]["link"]


def test_stored_groups_are_read_back_with_their_pending_state(story, models_dir):
    tenant = story.tenant
    assert fixes.clusters_load(tenant.id) is None
    assert fixes.clusters_status(tenant.id) == {"computed_at": None, "pending": False}
    fixes.clusters_store(tenant.id, {"computed_at": "2025-03-10T08:00:00+00:00", "clusters": [], "questions": 0,
                                     "from": "2025-03-03", "to": "2025-03-09"})
    assert fixes.clusters_path(tenant.id).parent.parent == models_dir / "insights"
    assert fixes.clusters_load(tenant.id)["pending"] is False
    fixes._write_json(fixes._requested_path(tenant.id), {"requested_at": "2025-03-10T09:00:00+00:00"})
    status = fixes.clusters_status(tenant.id)
    assert status["pending"] is True and status["requested_at"].hour == 9
    fixes.clusters_store(tenant.id, {"computed_at": "2025-03-10T09:01:00+00:00", "clusters": []})
    assert fixes.clusters_status(tenant.id)["pending"] is False
    fixes.clusters_path(tenant.id).write_text("{broken")
    assert fixes.clusters_load(tenant.id)["clusters"] == []


@pytest.fixture
def sent_tasks(monkeypatch, settings):
    settings.ANSWER_IN_PROCESS = False
    from chatbot.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=(), **kw: sent.append((name, tuple(args))))
    return sent


def test_the_regroup_button_queues_the_workers_task_by_name(story, sent_tasks, django_capture_on_commit_callbacks):
    manager = agent_of(story.tenant, role="manager")
    client = Client()
    client.force_login(manager)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/console/insights/fix/recompute/", {"tenant": "alpha", "from": "2025-03-03",
                                                                    "to": "2025-03-09"})

    assert response.status_code == 302
    assert response["Location"] == "/console/insights/fix/?tenant=alpha&from=2025-03-03&to=2025-03-09"
    assert sent_tasks == [("inference.unanswered_clusters", (story.tenant.id, "2025-03-03", "2025-03-09"))]
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"data-clusters-pending" in page.content and b"Grouping the unanswered questions again" in page.content
    assert client.get("/console/insights/fix/recompute/").status_code == 405


def test_nobody_but_the_stores_managers_can_regroup(story, sent_tasks):
    other = TenantFactory(slug="bravo")
    for user, tenant in [(agent_of(story.tenant), "alpha"), (agent_of(other, role="manager"), "alpha")]:
        client = Client()
        client.force_login(user)
        assert client.post("/console/insights/fix/recompute/", {"tenant": tenant}).status_code in (403, 404)
    assert sent_tasks == []
    assert not fixes._requested_path(story.tenant.id).exists()


def test_the_fix_page_lists_the_suggestions(story):
    manager = agent_of(story.tenant, role="manager")
    c = story.conversation(at(0))
    for i in range(3):
        story.asks(c, f"still waiting for my parcel {i}", at(0, 10, i), sentiment="negative")
        story.asks(c, f"hello there {i}", at(0, 11, i))
    client = Client()
    client.force_login(manager)
    response = client.get("/console/insights/fix/", {"from": "2025-03-03", "to": "2025-03-09"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unhappy visitors keep saying “still waiting”" in html
    assert 'data-kind="words"' in html and f"/console/review/{c.id}/" in html
    assert "Not grouped yet" in html
    assert json.loads(json.dumps(response.context["suggestions"], default=str))
    assert response.context["suggestions"][0]["impact"] == 3

"""Grouping unanswered questions by meaning with the packaged MiniLM encoder: a planted group of paraphrases
is found among unrelated questions, stored for the web process, and becomes the top suggestion."""
import json

import numpy as np
import pytest
from django.core.management import call_command

from chatbot.review import fixes
from inference import clusters
from tests.chatbot.test_insights import PERIOD, Story, at
from tests.factories import TenantFactory

CANADA = [
    "Do you ship to Canada?", "can you deliver my order to canada", "Is shipping to Canada available?",
    "do u ship to canada", "Can I get my order sent to Toronto, Canada?", "Do you deliver to Canadian addresses?",
]
NOISE = [
    "What's the capital of Peru?", "Can I pay with bitcoin?", "Do you have a store in Berlin?",
    "my cat is sick what should I do", "Is the blue tent waterproof?", "Can I book a repair appointment?",
    "Who designed your logo?", "What is the warranty on headlamps?", "Do you sell gift cards?",
    "Can I change the colour of my jacket after ordering?", "Recipe for pancakes please", "Are your boots vegan?",
    "Do you offer student discounts?", "How do I delete my account?", "Can I pick up my order in person?",
    "What's the weather tomorrow?", "Do you price match Amazon?", "Is there a loyalty program?",
    "Can I order by phone?", "What payment plans do you offer?",
]


@pytest.fixture(autouse=True)
def models_dir(settings, tmp_path):
    settings.MODELS_DIR = tmp_path
    return tmp_path


@pytest.fixture
def planted(db):
    """The Canada questions and the noise, each left unanswered (fallback or hand-off), plus answered ones."""
    story = Story(TenantFactory(slug="alpha", name="Alpha Outdoor"))
    ids = {"canada": [], "noise": []}
    texts = [("canada", t) for t in CANADA] + [("noise", t) for t in NOISE]
    for i, (kind, text) in enumerate(texts):
        conversation = story.conversation(at(i % 7))
        if i % 3:
            question, _ = story.exchange(conversation, text, at(i % 7, 10, i), fallback=True)
        else:
            question = story.asks(conversation, text, at(i % 7, 10, i))
            story.hand_off(question, "low intent confidence (0.2)" if i % 2 else "out-of-scope request")
        ids[kind].append(question.id)
    # Answered, or handed off at the visitor's wish: not part of the grouping.
    story.exchange(story.conversation(at(0)), "Do you ship to Canada quickly?", at(0, 9))
    story.hand_off(story.asks(story.conversation(at(0)), "ship to canada? a person please", at(0, 9)),
                   "visitor asked for a person")
    return story.tenant, ids


def test_the_planted_paraphrases_form_the_biggest_group(planted):
    tenant, ids = planted

    result = clusters.unanswered_clusters(tenant.id, PERIOD)

    assert result["questions"] == len(CANADA) + len(NOISE)
    top = result["clusters"][0]
    assert sorted(top["message_ids"]) == sorted(ids["canada"])
    assert top["size"] == 6 and top["conversations"] == 6
    assert top["label"] in CANADA and len(top["examples"]) == clusters.EXAMPLES
    assert all(c["size"] < 6 for c in result["clusters"][1:])
    assert fixes.clusters_load(tenant.id)["clusters"] == json.loads(json.dumps(result["clusters"]))


def test_the_stored_group_is_the_first_thing_to_fix(planted):
    tenant, ids = planted
    clusters.unanswered_clusters_run(tenant.id, PERIOD.start.isoformat(), PERIOD.end.isoformat())

    items = fixes.suggestions(tenant, PERIOD)

    assert items[0]["kind"] == "unanswered" and items[0]["impact"] == 6
    assert items[0]["title"].startswith("Add a knowledge entry: “") and "anada" in items[0]["title"]
    assert all(e["url"].startswith("/console/review/") for e in items[0]["examples"])


def test_the_command_prints_the_groups_and_a_json_line(planted, capsys):
    tenant, _ = planted
    call_command("unanswered_clusters", tenant.slug, "--from", "2025-03-03", "--to", "2025-03-09")
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["questions"] == 26 and summary["from"] == "2025-03-03"
    assert out[0].split()[0] == "6"


def test_grouping_nothing_or_one_question_stores_an_empty_result(db):
    tenant = TenantFactory()
    assert clusters.unanswered_clusters(tenant.id, PERIOD)["clusters"] == []
    assert fixes.clusters_load(tenant.id)["questions"] == 0
    assert list(clusters.cluster_labels(np.ones((1, 4), dtype=np.float32))) == [0]
    assert clusters.unanswered_clusters_run(10**9, "2025-03-03", "2025-03-09") == 0

"""The hand-off policy's rules."""
import pytest

from inference.policy import Labels, asks_for_human, decide
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    return TenantFactory(min_intent_confidence=0.5, min_retrieval_score=0.4, min_responder_score=0.3,
                         min_intent_reply_score=0.5, negative_turns_to_handoff=2)


@pytest.mark.parametrize("text", ["Can I talk to a human?", "I want a real person", "get me an agent",
                                  "speak with someone please", "REPRESENTATIVE"])
def test_requests_for_a_person_are_recognised(text):
    assert asks_for_human(text)


@pytest.mark.parametrize("text", ["where is my order", "is this jacket human-sized?", "my agenda"])
def test_ordinary_questions_are_not_requests_for_a_person(text):
    assert not asks_for_human(text)


def test_confident_grounded_message_is_answered(tenant):
    assert decide(tenant, "where is my order", Labels("track_order", 0.9, "neutral", 0.8), 0.8, []).action == "answer"


def test_asking_for_a_person_hands_off(tenant):
    d = decide(tenant, "hello", Labels("human_agent", 0.9), 0.9, [])
    assert d.hands_off and d.reason == "visitor asked for a person"


def test_one_negative_turn_is_tolerated_but_a_streak_hands_off(tenant):
    assert decide(tenant, "ugh", Labels("track_order", 0.9, "negative", 0.9), 0.9, ["neutral"]).action == "answer"
    d = decide(tenant, "ugh", Labels("track_order", 0.9, "negative", 0.9), 0.9, ["neutral", "negative"])
    assert d.hands_off and "negative" in d.reason


def test_out_of_scope_and_low_confidence_hand_off(tenant):
    assert decide(tenant, "x", Labels("out_of_scope", 0.9), 0.9, []).hands_off
    assert decide(tenant, "x", Labels("track_order", 0.3), 0.9, []).hands_off


def test_low_responder_score_hands_off(tenant):
    assert decide(tenant, "x", Labels("track_order", 0.9), 0.9, [], responder_score=0.1).hands_off
    assert decide(tenant, "x", Labels("track_order", 0.9), 0.1, [], responder_score=0.9).action == "answer"


def test_weak_retrieval_without_responder_falls_back(tenant):
    assert decide(tenant, "x", Labels(), 0.2, []).action == "fallback"
    assert decide(tenant, "x", Labels(), None, []).action == "fallback"


def test_weak_retrieval_is_answered_by_the_intents_own_reply_when_the_message_is_close_to_its_example(tenant):
    labels = Labels("thanks", 0.9, "positive", 0.9)
    d = decide(tenant, "thanks!", labels, 0.2, [], intent_reply_score=0.7)
    assert d.action == "answer" and d.details == {"source": "intent_reply"}
    assert decide(tenant, "thanks!", labels, 0.2, [], intent_reply_score=0.45).action == "fallback"
    assert decide(tenant, "thanks!", labels, 0.9, [], intent_reply_score=0.7).details == {}  # the knowledge entry
    assert decide(tenant, "x", Labels("thanks", 0.3), 0.2, [], intent_reply_score=0.9).hands_off  # unsure of the intent

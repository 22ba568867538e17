"""The hand-off policy's rules."""
import pytest

from chatbot.models import HandoffReason
from inference.policy import (
    STRONG_NEGATIVE_CONFIDENCE,
    Labels,
    asks_for_human,
    decide,
    fallbacks_hand_off,
    negative_streak,
)
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


def test_a_message_much_closer_to_an_intents_example_than_to_any_entry_gets_the_intents_reply(tenant):
    labels = Labels("thanks", 0.9, "positive", 0.9)
    # "¡Gracias!" on the multilingual base: 0.45 from some entry, 0.9 from "muchas gracias"
    assert decide(tenant, "¡Gracias!", labels, 0.45, [], intent_reply_score=0.9).details == {"source": "intent_reply"}
    assert decide(tenant, "¡Gracias!", labels, 0.45, [], intent_reply_score=0.6).details == {}  # not by the margin


# --- repeated fallbacks ---------------------------------------------------------------


@pytest.mark.parametrize(("limit", "in_a_row", "hands_off"), [
    (2, 1, False), (2, 2, True), (2, 5, True), (3, 2, False), (1, 1, True), (0, 1, False), (0, 50, False),
])
def test_fallbacks_hand_off_from_the_tenants_count_in_a_row_and_never_at_zero(limit, in_a_row, hands_off):
    assert fallbacks_hand_off(limit, in_a_row) is hands_off


def test_a_fallback_after_fallbacks_in_a_row_hands_off_instead(tenant):
    tenant.fallbacks_to_handoff = 2
    assert decide(tenant, "x", Labels(), 0.2, [], fallbacks_before=0).action == "fallback"
    d = decide(tenant, "x", Labels(), 0.2, [], fallbacks_before=1)
    assert d.hands_off and d.reason == "2 fallbacks in a row" and d.details == {"fallbacks": 2}
    tenant.fallbacks_to_handoff = 1
    assert decide(tenant, "x", Labels(), 0.2, []).reason == "1 fallback in a row"


def test_fallbacks_to_handoff_zero_never_hands_off(tenant):
    tenant.fallbacks_to_handoff = 0
    assert decide(tenant, "x", Labels(), 0.2, [], fallbacks_before=20).action == "fallback"


def test_earlier_fallbacks_do_not_stop_a_real_answer(tenant):
    tenant.fallbacks_to_handoff = 2
    assert decide(tenant, "x", Labels("track_order", 0.9), 0.9, [], fallbacks_before=5).action == "answer"
    d = decide(tenant, "thanks", Labels("thanks", 0.9), 0.2, [], intent_reply_score=0.9, fallbacks_before=5)
    assert d.details == {"source": "intent_reply"}


# --- codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "code", "reason"), [
    (dict(language="es"), "language", "language: es"),
    (dict(text="can I talk to a human"), "asked_for_person", "visitor asked for a person"),
    (dict(labels=Labels("track_order", 0.9, "negative", 0.5), earlier=["negative"]), "negative_sentiment",
     "negative sentiment for 2 turns"),
    (dict(labels=Labels("out_of_scope", 0.9)), "out_of_scope", "out-of-scope request"),
    (dict(labels=Labels("track_order", 0.3)), "low_confidence", "low intent confidence (0.30)"),
    (dict(responder_score=0.1), "low_responder_score", "low responder score (0.10)"),
    (dict(retrieval=0.1, fallbacks_before=1), "repeated_fallback", "2 fallbacks in a row"),
    (dict(retrieval=0.1), "fallback", "no knowledge entry close enough"),
    (dict(), "", ""),
])
def test_every_hand_off_and_fallback_carries_its_code_beside_its_words(tenant, call, code, reason):
    tenant.languages, tenant.fallbacks_to_handoff = ["en"], 2
    d = decide(tenant, call.get("text", "x"), call.get("labels", Labels("track_order", 0.9)),
               call.get("retrieval", 0.9), call.get("earlier", []), responder_score=call.get("responder_score"),
               fallbacks_before=call.get("fallbacks_before", 0), language=call.get("language", "en"))
    assert (d.code, d.reason) == (code, reason)
    assert code in HandoffReason.values or not code


# --- strong complaints ------------------------------------------------------------------

FURIOUS = Labels("complaint", 0.9, "negative", 0.94)


def test_a_strong_complaint_gets_the_complaint_reply_even_when_a_knowledge_entry_matches(tenant):
    d = decide(tenant, "This is the third time my package is late, I'm furious", FURIOUS, 0.8, [])
    assert d.action == "answer" and d.details == {"source": "complaint", "streak": 1}
    assert d.reason == "strong complaint (negative 0.94)"


def test_a_strong_complaint_is_not_a_fallback_nor_a_responder_hand_off(tenant):
    tenant.fallbacks_to_handoff = 2
    assert decide(tenant, "x", FURIOUS, None, [], fallbacks_before=3).details["source"] == "complaint"
    assert decide(tenant, "x", FURIOUS, 0.9, [], responder_score=0.05).details["source"] == "complaint"


@pytest.mark.parametrize("labels", [
    Labels("complaint", 0.9, "negative", STRONG_NEGATIVE_CONFIDENCE - 0.01),  # not sure enough
    Labels("complaint", 0.9, "neutral", 0.95),
    Labels("complaint", 0.9, "negative", None),
    Labels("track_order", 0.9, "negative", 0.95),  # one upset question: answered as usual
])
def test_unsure_or_single_negative_questions_are_answered_as_usual(tenant, labels):
    assert decide(tenant, "x", labels, 0.8, []).details == {}


def test_a_negative_streak_below_the_handoff_count_gets_the_complaint_reply_and_at_the_count_hands_off(tenant):
    tenant.negative_turns_to_handoff = 3
    upset = Labels("track_order", 0.9, "negative", 0.9)
    assert decide(tenant, "x", upset, 0.8, ["negative"]).details == {"source": "complaint", "streak": 2}
    d = decide(tenant, "x", upset, 0.8, ["negative", "negative"])
    assert d.hands_off and d.reason == "negative sentiment for 3 turns"


def test_the_negative_streak_hand_off_wins_over_the_complaint_reply(tenant):
    d = decide(tenant, "x", FURIOUS, 0.8, ["negative"])  # negative_turns_to_handoff=2
    assert d.hands_off and d.reason == "negative sentiment for 2 turns"


def test_asking_for_a_person_and_unsure_intents_still_hand_off_a_complaint(tenant):
    assert decide(tenant, "let me talk to a human", FURIOUS, 0.8, []).reason == "visitor asked for a person"
    assert decide(tenant, "x", Labels("complaint", 0.2, "negative", 0.94), 0.8, []).hands_off


def test_negative_streak_counts_back_to_the_last_other_turn():
    assert negative_streak("negative", ["negative", "neutral", "negative", "negative"]) == 3
    assert negative_streak("neutral", ["negative"]) == 0
    assert negative_streak("negative", []) == 1

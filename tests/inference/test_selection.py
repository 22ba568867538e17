"""Consensus selection among candidate replies (inference.responder.selection); the trained responder's
use of it is tested in test_responder."""
import pytest
from hypothesis import given, strategies as st

from inference.responder.selection import agreement, consensus_pick

REFUND = "Your refund is processed within 5 business days after we receive the item"


def test_the_reply_most_candidates_agree_with_wins_and_an_outlier_never_does():
    candidates = ["Thanks, an agent will be with you shortly",
                  REFUND, REFUND.replace("5", "five"), REFUND.replace("the item", "your parcel")]
    index, score = consensus_pick(candidates)
    assert index == 1 and 0.5 < score < 1.0
    assert consensus_pick(list(reversed(candidates)))[0] != 0  # the outlier, wherever it stands


def test_one_candidate_is_its_own_consensus_ties_go_first_and_empty_ones_lose():
    assert consensus_pick(["only this"]) == (0, 1.0)
    assert consensus_pick(["same words", "same words"])[0] == 0
    assert consensus_pick(["", "refund in 5 days", "refund in five days"])[0] == 1
    with pytest.raises(ValueError):
        consensus_pick([])


@given(st.text(alphabet="abc ", max_size=30), st.text(alphabet="abc ", max_size=30))
def test_agreement_is_symmetric(a, b):
    assert agreement(a, b) == agreement(b, a)

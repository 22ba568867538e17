"""Choosing the reply that serves among candidates: minimum Bayes risk by consensus.

The candidates are the responder's own reply and the store's replies to its most similar
earlier messages (the reply memory). The one that agrees most with all the others (the
highest mean ROUGE-L against them) is the least risky: a stored reply that stands alone
(a one-off answer to a slightly different question) or a generated reply that drifted loses
to the reply most of the neighbourhood would have given. Measured on held-out Bitext replies
(`bench/responder.py --bitext`), consensus over 20 neighbours beats the single nearest one.
"""
from collections.abc import Sequence
from functools import lru_cache

from inference.responder.metrics import rouge_l_tokens, tokens

CONSENSUS_K = 20  # stored replies beside the generated one (GenerationSettings.candidates)


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    """Tokens of a candidate, cached: the same stored replies come back message after message."""
    return tuple(tokens(text))


@lru_cache(maxsize=65536)
def _agreement(a: str, b: str) -> float:
    return rouge_l_tokens(list(_tokens(a)), list(_tokens(b)))


def agreement(a: str, b: str) -> float:
    """ROUGE-L F1 of two candidates, symmetric and cached (pairs of stored replies recur)."""
    return _agreement(*sorted((a, b)))


def consensus_pick(candidates: Sequence[str]) -> tuple[int, float]:
    """Index of the candidate with the highest mean agreement with the others, and that mean.

    Ties go to the earlier candidate (the generated reply comes first); empty candidates never win
    unless all are empty. One candidate is its own consensus (agreement 1.0).
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if len(candidates) == 1:
        return 0, 1.0
    best, best_score = 0, -1.0
    for i, a in enumerate(candidates):
        if not a.strip():
            continue
        score = sum(agreement(a, b) for j, b in enumerate(candidates) if j != i) / (len(candidates) - 1)
        if score > best_score:
            best, best_score = i, score
    return best, round(max(best_score, 0.0), 4)

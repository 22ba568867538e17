"""Reply quality: ROUGE-L F1 and corpus BLEU, on lower-cased word tokens.

Small re-implementations, so serving needs no extra package: ROUGE-L follows
rouge-score (LCS F-measure, tokens [a-z0-9]+, no stemming) and BLEU follows sacrebleu's
corpus BLEU (4-grams, brevity penalty, 0..100) on these tokens.
"""
import math
import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö): one
    big-integer step per token of `b` instead of a row of the O(len(a) * len(b)) table, so
    scoring thousands of 100-word replies against each other takes seconds, not minutes."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one reply against one reference."""
    return rouge_l_tokens(tokens(prediction), tokens(reference))


def rouge_l_tokens(p: list[str], r: list[str]) -> float:
    """ROUGE-L F1 of token lists (`tokens` of each text): score many pairs without re-tokenizing."""
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(predictions: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU (0..100) with one reference per prediction."""
    matches, totals = [0] * max_n, [0] * max_n
    pred_len = ref_len = 0
    for prediction, reference in zip(predictions, references, strict=True):
        p, r = tokens(prediction), tokens(reference)
        pred_len, ref_len = pred_len + len(p), ref_len + len(r)
        for n in range(1, max_n + 1):
            pred_ngrams, ref_ngrams = _ngrams(p, n), _ngrams(r, n)
            matches[n - 1] += sum(min(c, ref_ngrams[g]) for g, c in pred_ngrams.items())
            totals[n - 1] += max(len(p) - n + 1, 0)
    if pred_len == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
    return 100 * brevity * math.exp(log_precision)


def reply_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """Mean ROUGE-L F1 (0..1) and corpus BLEU (0..100) of replies against references."""
    n = len(references)
    return {
        "n": n,
        "rouge_l": round(sum(rouge_l(p, r) for p, r in zip(predictions, references, strict=True)) / max(n, 1), 4),
        "bleu": round(corpus_bleu(predictions, references), 2),
    }

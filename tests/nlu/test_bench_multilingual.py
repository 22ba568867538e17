"""The multilingual benchmark's held-out bookkeeping: a translated row is scored only when the English item
it may translate was held out of training (no data, no model needed)."""
from collections import Counter

from bench.multilingual import translating_only, intent_folds


def test_aligned_rows_follow_their_english_item():
    counts_en = {"Stop": 3, "Help": 2}
    rows = [("Stop", 0), ("Stop", 1), ("Stop", 2), ("Help", 0), ("Help", 1)]
    assert translating_only(counts_en, rows, {("Stop", 1), ("Help", 0)}) == [False, True, False, True, False]


def test_an_extra_or_missing_row_holds_out_only_rows_whose_every_possible_source_is_held_out():
    counts_en = {"Stop": 4}
    extra = [("Stop", p) for p in range(5)]  # one row more than English: row p translates item p-1 or p
    assert translating_only(counts_en, extra, {("Stop", 1), ("Stop", 2)}) == [False, False, True, False, False]
    fewer = [("Stop", p) for p in range(3)]  # one row less: row p translates item p or p+1
    assert translating_only(counts_en, fewer, {("Stop", 1), ("Stop", 2)}) == [False, True, False]
    assert translating_only(counts_en, [("Unknown", 0)], {("Unknown", 0)}) == [False]


def test_folds_hold_every_item_out_once_and_share_each_intent():
    labels = ["a"] * 8 + ["b"] * 4 + ["c"] * 5
    folds = intent_folds(labels, 4, seed=42)
    assert folds == intent_folds(labels, 4, seed=42)
    for label in "abc":
        per_fold = Counter(f for f, y in zip(folds, labels) if y == label)
        assert set(per_fold) == {0, 1, 2, 3} and max(per_fold.values()) - min(per_fold.values()) <= 1

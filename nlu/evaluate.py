"""Metrics: accuracy, macro-F1, per-class precision/recall/F1, and out-of-scope figures."""
from collections import Counter

from nlu import OUT_OF_SCOPE


def classification_metrics(y_true: list[str], y_pred: list[str]) -> dict:
    """accuracy, macro_f1 (over the true labels' classes and predicted ones) and per_class figures."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    n = len(y_true)
    tp, fp, fn = Counter(), Counter(), Counter()
    for t, p in zip(y_true, y_pred):
        if t == p:
            tp[t] += 1
        else:
            fp[p] += 1
            fn[t] += 1
    support = Counter(y_true)
    per_class = {}
    for label in sorted(set(y_true) | set(y_pred)):
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / support[label] if support[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                            "f1": round(f1, 4), "support": support[label]}
    macro_f1 = sum(c["f1"] for c in per_class.values()) / len(per_class) if per_class else 0.0
    return {"n": n, "accuracy": round(sum(tp.values()) / n, 4) if n else 0.0,
            "macro_f1": round(macro_f1, 4), "per_class": per_class}


def oos_metrics(y_true: list[str], y_pred: list[str], oos_label: str = OUT_OF_SCOPE) -> dict:
    """In-scope accuracy (rejecting an in-scope message counts as wrong) and out-of-scope recall/precision."""
    in_pairs = [(t, p) for t, p in zip(y_true, y_pred) if t != oos_label]
    oos_true = sum(t == oos_label for t in y_true)
    oos_pred = sum(p == oos_label for p in y_pred)
    oos_hit = sum(t == p == oos_label for t, p in zip(y_true, y_pred))
    return {
        "in_scope_accuracy": round(sum(t == p for t, p in in_pairs) / len(in_pairs), 4) if in_pairs else None,
        "oos_recall": round(oos_hit / oos_true, 4) if oos_true else None,
        "oos_precision": round(oos_hit / oos_pred, 4) if oos_pred else None,
    }

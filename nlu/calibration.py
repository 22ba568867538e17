"""Confidence calibration (temperature scaling) and out-of-scope scoring, both fitted on validation data."""
import math
from dataclasses import dataclass

import numpy as np
import torch

OOS_METHODS = ("msp", "energy", "mahalanobis", "knn", "energy+knn")
COMBINED = {"energy+knn": ("energy", "knn")}  # sums of standardised scores


def oos_parts(method: str | None) -> tuple[str, ...]:
    """The single scores a method reads: itself, or its parts when it is a combination."""
    return COMBINED.get(method, (method,)) if method else ()


@dataclass
class Outputs:
    """A batch as the out-of-scope scores see it."""

    logits: np.ndarray
    features: np.ndarray | None = None
    probs: np.ndarray | None = None  # the final probabilities (calibrated, neighbour-mixed); None: from logits
    sims: np.ndarray | None = None  # similarities to the nearest training examples, nearest first

    def probabilities(self, temperature: float) -> np.ndarray:
        return self.probs if self.probs is not None else softmax(self.logits, temperature)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probs = softmax(logits, temperature)
    return float(-np.log(probs[np.arange(len(labels)), labels] + 1e-12).mean())


def temperature_fit(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises validation log-loss (grid, then a finer grid around the best)."""
    if len(labels) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 120))
    best = min(grid, key=lambda t: nll(logits, labels, t))
    fine = best * np.exp(np.linspace(-0.06, 0.06, 25))
    return float(min(fine, key=lambda t: nll(logits, labels, t)))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by count."""
    if len(labels) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(conf[in_bin].mean() - correct[in_bin].mean())
    return float(ece)


def mahalanobis_fit(features: np.ndarray, labels: np.ndarray, num_labels: int, shrinkage: float = 0.05) -> dict:
    """Class means and a shared, shrunk precision matrix, stored as the products prediction needs."""
    feats = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(labels)
    means = torch.stack([feats[y == c].mean(0) if (y == c).any() else feats.mean(0) for c in range(num_labels)])
    centred = feats - means[y]
    cov = centred.T @ centred / max(len(feats) - 1, 1)
    dim = cov.shape[0]
    cov = (1 - shrinkage) * cov + shrinkage * torch.trace(cov) / dim * torch.eye(dim, dtype=cov.dtype)
    precision = torch.linalg.pinv(cov, hermitian=True)
    pm = precision @ means.T  # D x C
    return {"precision": precision.float(), "precision_means": pm.float(),
            "mean_norms": (means * pm.T).sum(1).float()}


def oos_scores(method: str, out: Outputs, temperature: float, stats: dict | None = None,
               norm: list[float] | None = None) -> np.ndarray:
    """In-scope scores, higher meaning more in scope.

    msp: the top probability; energy: temperature · logsumexp(logits / temperature);
    mahalanobis: minus the distance to the closest class mean; knn: the cosine similarity
    to the nearest training example; energy+knn: the sum of both, each standardised by
    `norm` (mean, std per part, from in-scope validation data). Measured on CLINC150 the
    sum separates far better than either part: the two make different mistakes.
    """
    if method in COMBINED:
        parts = COMBINED[method]
        return sum((oos_scores(part, out, temperature, stats) - norm[2 * i]) / norm[2 * i + 1]
                   for i, part in enumerate(parts))
    if method == "msp":
        return out.probabilities(temperature).max(axis=1)
    if method == "energy":
        z = out.logits / temperature
        m = z.max(axis=1)
        return temperature * (m + np.log(np.exp(z - m[:, None]).sum(axis=1)))
    if method == "mahalanobis":
        f = torch.as_tensor(out.features, dtype=torch.float32)
        quad = ((f @ stats["precision"]) * f).sum(1, keepdim=True)
        dist = quad - 2 * f @ stats["precision_means"] + stats["mean_norms"]
        return (-dist.min(1).values).numpy()
    if method == "knn":
        return out.sims[:, 0]
    raise ValueError(f"unknown out-of-scope method {method!r}")


def threshold_balanced(in_scores: np.ndarray, in_correct: np.ndarray, oos_scores_: np.ndarray) -> tuple[float, float]:
    """Threshold maximising (in-scope accuracy + out-of-scope recall) / 2; returns (threshold, criterion).

    In-scope accuracy counts an in-scope example right only if it is classified right and not rejected.
    """
    cands = np.unique(np.concatenate([in_scores, oos_scores_]))
    mids = np.concatenate([[cands[0] - 1e-6], (cands[:-1] + cands[1:]) / 2, [cands[-1] + 1e-6]])
    order = np.argsort(in_scores)
    sorted_in = in_scores[order]
    correct_sorted = in_correct[order].astype(float)
    # correct & accepted (score >= t): suffix sums of correctness over sorted in-scope scores
    suffix = np.concatenate([np.cumsum(correct_sorted[::-1])[::-1], [0.0]])
    in_acc = suffix[np.searchsorted(sorted_in, mids, side="left")] / max(len(in_scores), 1)
    oos_rec = np.searchsorted(np.sort(oos_scores_), mids, side="left") / max(len(oos_scores_), 1)
    crit = (in_acc + oos_rec) / 2
    best = int(np.argmax(crit))
    return float(mids[best]), float(crit[best])


def binomial_tails(n: int, p: float) -> np.ndarray:
    """P(X >= k) for X ~ Binomial(n, p) and every k from 0 to n + 1, in one pass over the pmf."""
    if p <= 0.0 or p >= 1.0:
        return np.array([1.0] + [float(p >= 1.0)] * n + [0.0])
    i = np.arange(n + 1)
    log_pmf = (math.lgamma(n + 1) - np.array([math.lgamma(k + 1) + math.lgamma(n - k + 1) for k in i])
               + i * math.log(p) + (n - i) * math.log1p(-p))
    tails = np.cumsum(np.exp(log_pmf)[::-1])[::-1]
    return np.concatenate([[1.0], tails[1:], [0.0]])


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return float(binomial_tails(n, p)[min(max(k, 0), n + 1)])


def threshold_for_recall(in_scores: np.ndarray, oos_scores_: np.ndarray, min_recall: float,
                         alpha: float = 0.05) -> float | None:
    """The lowest threshold at which the validation out-of-scope recall shows, by a one-sided binomial
    test at `alpha`, a true recall of at least `min_recall`; None when the examples are too few for that.

    The lowest such threshold rejects the fewest in-scope messages. With 100 out-of-scope examples and
    0.80 asked, 87 of them must be caught: the margin a small validation set needs.
    """
    n = len(oos_scores_)
    shown = np.flatnonzero(binomial_tails(n, min_recall)[: n + 1] <= alpha)
    if not len(shown) or shown[0] == 0:
        return None
    needed = int(shown[0])
    caught = np.sort(oos_scores_)[needed - 1]  # in scope when score >= threshold: this one must fall below
    above = np.concatenate([in_scores, oos_scores_])
    above = above[above > caught]
    return float((caught + above.min()) / 2) if len(above) else float(caught + 1e-6)


def oos_threshold_choose(in_scores: np.ndarray, in_correct: np.ndarray, oos_scores_: np.ndarray | None,
                         quantile: float = 0.05, min_recall: float = 0.0) -> dict:
    """One score's threshold on validation data.

    With out-of-scope examples: the lowest threshold that shows an out-of-scope recall of at least
    `min_recall` (`threshold_for_recall`; its criterion is the in-scope accuracy kept), or, with
    `min_recall` 0 or too few examples to show it, the balanced criterion's. Without: a low quantile
    of the in-scope scores.
    """
    if oos_scores_ is None or len(oos_scores_) == 0:
        return {"threshold": float(np.quantile(in_scores, quantile)),
                "reason": f"{quantile:.0%} quantile of in-scope validation scores"}
    threshold = threshold_for_recall(in_scores, oos_scores_, min_recall) if min_recall > 0 else None

    def in_accuracy(t: float) -> float:
        return float((in_correct & (in_scores >= t)).mean())

    if threshold is not None:
        criterion = in_accuracy(threshold)
        reason = f"out-of-scope recall at least {min_recall:.0%} on validation (95% confidence)"
    else:
        threshold, criterion = threshold_balanced(in_scores, in_correct, oos_scores_)
        reason = "best balanced criterion on validation"
        if min_recall > 0:
            reason += f" (too few out-of-scope examples to show a recall of {min_recall:.0%})"
    return {"threshold": threshold, "criterion": criterion, "in_scope_accuracy": in_accuracy(threshold),
            "oos_recall": float((oos_scores_ < threshold).mean()), "reason": reason}


def threshold_summary(choice: dict) -> dict:
    """What a threshold choice kept on validation: the threshold, in-scope accuracy and out-of-scope recall."""
    return {k: choice[k] for k in ("threshold", "in_scope_accuracy", "oos_recall") if k in choice}


def oos_norm_fit(method: str, val: Outputs, temperature: float, stats: dict | None = None) -> list[float] | None:
    """A combined method's norm: mean and std of each part on in-scope validation data; None for single scores."""
    if method not in COMBINED:
        return None
    norm = []
    for part in COMBINED[method]:
        part_in = oos_scores(part, val, temperature, stats)
        norm += [float(part_in.mean()), float(part_in.std()) or 1.0]
    return norm


def oos_choose(val: Outputs, labels: np.ndarray, temperature: float, oos: Outputs | None,
               stats: dict | None = None, quantile: float = 0.05, methods=OOS_METHODS, min_recall: float = 0.0) -> dict:
    """Pick the out-of-scope method and threshold on validation data.

    With out-of-scope validation examples: each method's threshold (`oos_threshold_choose`, asking
    for `min_recall`), the best criterion wins. Without: the top probability, thresholded at a low
    quantile of the in-scope confidences. `stats` holds Mahalanobis statistics (the method is skipped
    without them); knn needs `sims`.
    """
    if len(labels) == 0:
        return {"method": None, "threshold": None, "reason": "no validation data"}
    correct = val.probabilities(temperature).argmax(axis=1) == labels
    if oos is None or len(oos.logits) == 0:
        return {"method": "msp", **oos_threshold_choose(oos_scores("msp", val, temperature), correct, None, quantile)}
    candidates = {}
    for method in methods:
        needs = oos_parts(method)
        if ("mahalanobis" in needs and stats is None) or ("knn" in needs and val.sims is None):
            continue
        norm = oos_norm_fit(method, val, temperature, stats)
        s_in = oos_scores(method, val, temperature, stats, norm)
        s_out = oos_scores(method, oos, temperature, stats, norm)
        candidates[method] = {**oos_threshold_choose(s_in, correct, s_out, min_recall=min_recall), "norm": norm}
    method = max(candidates, key=lambda m: candidates[m]["criterion"])
    best = candidates[method]
    return {"method": method, "threshold": best["threshold"], "norm": best["norm"], "reason": best["reason"],
            "candidates": candidates}

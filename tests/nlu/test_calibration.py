import numpy as np
import pytest

from nlu.calibration import (
    Outputs,
    binomial_tail,
    expected_calibration_error,
    mahalanobis_fit,
    oos_choose,
    oos_scores,
    oos_threshold_choose,
    softmax,
    temperature_fit,
    threshold_balanced,
    threshold_for_recall,
)
from nlu.neighbours import neighbours_fit, neighbours_top


def overconfident_logits(n=2000, classes=5, true_temperature=3.0, seed=0):
    """Logits whose calibrated probabilities come from dividing by `true_temperature`."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(n, classes)) * true_temperature
    probs = softmax(logits, true_temperature)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels


def test_temperature_fit_recovers_the_true_temperature_and_lowers_ece():
    logits, labels = overconfident_logits()
    temperature = temperature_fit(logits, labels)
    assert 2.5 < temperature < 3.6
    assert expected_calibration_error(softmax(logits, temperature), labels) < \
        expected_calibration_error(softmax(logits), labels) / 2


def test_temperature_without_validation_data_is_one():
    assert temperature_fit(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0


def test_balanced_threshold_separates_in_scope_from_out_of_scope():
    in_scores = np.array([0.9, 0.8, 0.95, 0.7, 0.85])
    out_scores = np.array([0.2, 0.4, 0.3])
    threshold, criterion = threshold_balanced(in_scores, np.ones(5, dtype=bool), out_scores)
    assert 0.4 < threshold <= 0.7
    assert criterion == 1.0


def test_binomial_tail_matches_direct_sums():
    assert binomial_tail(0, 5, 0.3) == 1.0
    assert binomial_tail(3, 5, 0.5) == pytest.approx(16 / 32)
    assert binomial_tail(5, 5, 0.5) == pytest.approx(1 / 32)
    assert binomial_tail(6, 5, 0.5) == 0.0


def overlapping_scores(n_in=2000, n_out=100, gap=2.0, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(gap, 1.0, n_in), rng.normal(0.0, 1.0, n_out)


def test_recall_threshold_catches_enough_out_of_scope_examples_to_show_the_recall_asked():
    in_scores, out_scores = overlapping_scores()
    threshold = threshold_for_recall(in_scores, out_scores, 0.8)
    caught = int((out_scores < threshold).sum())
    assert caught == 87  # the fewest of 100 that show 0.80 at 95 % confidence
    assert binomial_tail(caught, 100, 0.8) <= 0.05 < binomial_tail(caught - 1, 100, 0.8)
    # asking for more recall rejects more in-scope messages
    assert (in_scores < threshold_for_recall(in_scores, out_scores, 0.9)).sum() > (in_scores < threshold).sum()


def test_recall_rule_falls_back_to_the_balanced_criterion_with_too_few_examples():
    in_scores, out_scores = overlapping_scores(n_out=8)
    assert threshold_for_recall(in_scores, out_scores, 0.8) is None
    choice = oos_threshold_choose(in_scores, np.ones(len(in_scores), dtype=bool), out_scores, min_recall=0.8)
    assert choice["reason"].startswith("best balanced criterion") and "too few" in choice["reason"]
    assert choice["threshold"] == pytest.approx(threshold_balanced(in_scores, np.ones(len(in_scores), bool),
                                                                   out_scores)[0])


def test_recall_rule_keeps_more_in_scope_messages_than_the_balanced_criterion_when_scores_separate_well():
    in_scores, out_scores = overlapping_scores(gap=3.5)
    correct = np.ones(len(in_scores), dtype=bool)
    recall = oos_threshold_choose(in_scores, correct, out_scores, min_recall=0.8)
    balanced = oos_threshold_choose(in_scores, correct, out_scores)
    assert recall["oos_recall"] == pytest.approx(0.87) and "95% confidence" in recall["reason"]
    assert balanced["oos_recall"] > 0.9 and recall["in_scope_accuracy"] > balanced["in_scope_accuracy"]
    assert recall["criterion"] == recall["in_scope_accuracy"]


def test_without_oos_examples_the_threshold_is_a_quantile_of_in_scope_confidence():
    logits, labels = overconfident_logits(n=500, true_temperature=1.0)
    choice = oos_choose(Outputs(logits), labels, 1.0, None, quantile=0.1)
    assert choice["method"] == "msp"
    rejected = (softmax(logits).max(1) < choice["threshold"]).mean()
    assert 0.08 <= rejected <= 0.12


def test_oos_method_is_chosen_on_validation_data():
    rng = np.random.default_rng(1)
    feats = np.concatenate([rng.normal(m, 0.3, size=(100, 4)) for m in (-2, 2)])
    labels = np.repeat([0, 1], 100)
    logits = np.stack([-feats.sum(1), feats.sum(1)], axis=1)
    oos_feats = rng.normal(0, 0.3, size=(30, 4)) + np.array([6, 6, -2, -2])  # far away, yet confident logits
    oos_logits = np.stack([-oos_feats.sum(1), oos_feats.sum(1)], axis=1)
    stats = mahalanobis_fit(feats, labels, 2)
    choice = oos_choose(Outputs(logits, feats), labels, 1.0, Outputs(oos_logits, oos_feats), stats,
                        methods=("msp", "energy", "mahalanobis"))
    assert set(choice["candidates"]) == {"msp", "energy", "mahalanobis"}
    assert choice["method"] == "mahalanobis"
    assert (oos_scores("mahalanobis", Outputs(oos_logits, oos_feats), 1.0, stats) < choice["threshold"]).all()


def test_knn_scores_far_examples_as_out_of_scope():
    rng = np.random.default_rng(2)
    train = np.concatenate([rng.normal(0, 0.2, size=(50, 4)) + c for c in ([3, 0, 0, 0], [0, 3, 0, 0])])
    index = neighbours_fit(train, np.repeat([0, 1], 50))
    val = np.concatenate([rng.normal(0, 0.2, size=(20, 4)) + c for c in ([3, 0, 0, 0], [0, 3, 0, 0])])
    labels = np.repeat([0, 1], 20)
    oos = rng.normal(0, 0.2, size=(20, 4)) + np.array([0, 0, 3, 0])  # a direction no class has

    def logits(f):
        return np.stack([f[:, 0], f[:, 1]], axis=1) * 5

    val_out = Outputs(logits(val), val, sims=neighbours_top(val, index, 1)[0])
    oos_out = Outputs(logits(oos), oos, sims=neighbours_top(oos, index, 1)[0])
    choice = oos_choose(val_out, labels, 1.0, oos_out, methods=("knn",))
    assert choice["method"] == "knn"
    assert choice["candidates"]["knn"]["oos_recall"] == 1.0
    assert choice["candidates"]["knn"]["in_scope_accuracy"] == 1.0


def test_combined_score_standardises_its_parts_on_in_scope_validation():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, size=(50, 3)) * 4
    sims = rng.uniform(0.5, 1.0, size=(50, 1))
    out = Outputs(logits, sims=sims)
    energy, knn = oos_scores("energy", out, 1.0), oos_scores("knn", out, 1.0)
    norm = [energy.mean(), energy.std(), knn.mean(), knn.std()]
    combined = oos_scores("energy+knn", out, 1.0, norm=norm)
    assert np.allclose(combined, (energy - norm[0]) / norm[1] + (knn - norm[2]) / norm[3])
    assert abs(combined.mean()) < 1e-9
    choice = oos_choose(out, logits.argmax(1), 1.0, Outputs(logits[:10] / 10, sims=sims[:10] / 2),
                        methods=("energy+knn",))
    assert choice["norm"] == pytest.approx(norm)

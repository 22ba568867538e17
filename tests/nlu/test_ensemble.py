"""Seed ensembles: trained on one split, saved as one folder, loaded and used like a single classifier."""
import json

import numpy as np
import pytest

from nlu import OUT_OF_SCOPE
from nlu.ensemble import Ensemble, ensemble_assemble, ensemble_train
from nlu.loading import labeller_load
from nlu.predict import Classifier, model_saved

from .conftest import TINY_INTENTS, TINY_OOS


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory, tiny_encoder):
    from nlu.train import TrainConfig

    texts = [t for examples in TINY_INTENTS.values() for t in examples] + ["sing me a song"]
    labels = [i for i, examples in TINY_INTENTS.items() for _ in examples] + [OUT_OF_SCOPE]
    config = TrainConfig(base_encoder=tiny_encoder, epochs=20, batch_size=8, lr=1e-3, max_length=32,
                         label_smoothing=0.0, val_fraction=0.25, oos=True, oos_min_train_for_mahalanobis=10,
                         threads=1)
    out = tmp_path_factory.mktemp("ensemble")
    metrics = ensemble_train(texts, labels, config, out, oos_val_texts=TINY_OOS, progress=False, members=2)
    return out, metrics, texts[:-1], labels[:-1]


def test_members_share_one_split_and_differ_by_seed(ensemble_dir):
    out, metrics, _, _ = ensemble_dir
    members = [json.loads((out / f"member-{i}" / "metrics.json").read_text()) for i in range(2)]
    assert [m["config"]["seed"] for m in members] == [42, 43]
    assert members[0]["n_train"] == members[1]["n_train"] == metrics["n_train"] == 24
    assert metrics["n_val"] == 8 and metrics["n_oos_val"] == len(TINY_OOS) + 1  # the labelled one joins
    assert metrics["members"] == 2 and len(metrics["member_val_accuracy"]) == 2
    assert model_saved(out) and not (out / "nlu.json").exists()


def test_loads_as_one_classifier_whose_probabilities_are_the_members_mean(ensemble_dir):
    out, _, texts, labels = ensemble_dir
    ensemble = labeller_load(out)
    assert isinstance(ensemble, Ensemble) and ensemble.task == "intent"
    assert ensemble.labels == sorted(TINY_INTENTS)
    members = [Classifier.load(out / f"member-{i}") for i in range(2)]
    probs, _ = ensemble.scored_many(texts)
    expected = np.mean([m.scored_many(texts)[0] for m in members], axis=0)
    assert np.allclose(probs, expected, atol=1e-6)
    predictions = ensemble.predict(texts)
    assert sum(p.top_label == y for p, y in zip(predictions, labels)) / len(labels) >= 0.9


def test_out_of_scope_threshold_is_chosen_on_the_averaged_standardised_scores(ensemble_dir):
    out, metrics, _, _ = ensemble_dir
    ensemble = labeller_load(out)
    assert metrics["oos"]["threshold"] == pytest.approx(ensemble.meta.oos_threshold)
    assert len(ensemble.meta.oos_norm) == 2 and all(std > 0 for _, std in ensemble.meta.oos_norm)
    _, scores = ensemble.scored_many(TINY_OOS)
    members = [m.scored_many(TINY_OOS)[1] for m in ensemble.members]
    expected = np.mean([(s - mean) / std for s, (mean, std) in zip(members, ensemble.meta.oos_norm)], axis=0)
    assert np.allclose(scores, expected, atol=1e-5)
    ensemble.meta.oos_threshold = float(scores.max()) + 1.0  # everything below: all out of scope
    assert {p.label for p in ensemble.predict(TINY_OOS)} == {OUT_OF_SCOPE}


def test_single_message_path_matches_the_batch_path(ensemble_dir):
    out, _, texts, _ = ensemble_dir
    ensemble = labeller_load(out)
    batch = ensemble.predict(texts[:5])
    single = [ensemble.predict_one(t) for t in texts[:5]]
    assert [p.label for p in batch] == [p.label for p in single]
    assert np.allclose([p.confidence for p in batch], [p.confidence for p in single], atol=1e-3)


def test_one_member_is_a_plain_classifier(tmp_path, tiny_config, tiny_data):
    ensemble_train(*tiny_data, tiny_config, tmp_path, progress=False, members=1)
    assert (tmp_path / "nlu.json").is_file()
    assert isinstance(labeller_load(tmp_path), Classifier)


def test_members_with_other_labels_are_refused(ensemble_dir, tmp_path, tiny_config, tiny_data):
    out, _, _, _ = ensemble_dir
    texts, labels = tiny_data
    keep = [i for i, y in enumerate(labels) if y != "greeting"]
    ensemble_train([texts[i] for i in keep], [labels[i] for i in keep], tiny_config, tmp_path / "other",
                   progress=False)
    (tmp_path / "same").symlink_to(out / "member-0")
    with pytest.raises(ValueError, match="same labels; other differ"):
        ensemble_assemble(tmp_path, ["same", "other"], "intent", texts[:4], labels[:4], [], tiny_config)


def test_int8_ensemble_uses_its_own_threshold_and_norms(ensemble_dir):
    out, metrics, texts, _ = ensemble_dir
    plain, quantized = labeller_load(out), labeller_load(out, quantize=True)
    assert plain.meta.oos_threshold == pytest.approx(metrics["oos"]["threshold"])
    assert quantized.meta.oos_threshold == pytest.approx(metrics["oos"]["int8"]["threshold"])
    assert quantized.meta.oos_norm == quantized.meta.int8_oos_norm != plain.meta.oos_norm
    assert len(quantized.predict(texts)) == len(texts)

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from nlu import OUT_OF_SCOPE
from nlu.predict import Classifier
from nlu.train import TrainConfig, split_stratified, train_classifier

from .conftest import TINY_OOS


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder):
    """One tiny intent model with out-of-scope validation examples, shared by the tests here."""
    from nlu.train import TrainConfig

    from .conftest import TINY_INTENTS

    texts = [t for examples in TINY_INTENTS.values() for t in examples]
    labels = [i for i, examples in TINY_INTENTS.items() for _ in examples]
    config = TrainConfig(base_encoder=tiny_encoder, epochs=30, batch_size=8, lr=1e-3, max_length=32,
                         label_smoothing=0.0, val_fraction=0.25, oos=True, oos_min_train_for_mahalanobis=10,
                         linear_probe_init=True, threads=1)
    out = tmp_path_factory.mktemp("model")
    metrics = train_classifier(texts, labels, config, out, oos_val_texts=TINY_OOS, progress=False)
    return out, metrics, texts, labels


def test_training_saves_a_loadable_folder_with_its_metrics(trained):
    out, metrics, _, _ = trained
    assert {"nlu.json", "head.safetensors", "metrics.json", "encoder"} <= {p.name for p in out.iterdir()}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["val_accuracy"] == metrics["val_accuracy"]
    assert metrics["n_train"] == 24 and metrics["n_val"] == 8 and metrics["n_oos_val"] == len(TINY_OOS)
    assert metrics["temperature"] > 0


def test_tiny_model_learns_the_training_data(trained):
    out, _, texts, labels = trained
    clf = Classifier.load(out)
    predictions = clf.predict(texts)
    top_accuracy = sum(p.top_label == y for p, y in zip(predictions, labels)) / len(labels)
    assert top_accuracy >= 0.9
    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)


def test_out_of_scope_rule_is_chosen_on_validation_data(trained):
    out, metrics, _, _ = trained
    oos = metrics["oos"]
    assert oos["reason"].startswith("best balanced criterion on validation")  # 6 examples: too few for a recall
    assert oos["method"] in oos["candidates"]
    clf = Classifier.load(out)
    assert clf.meta.oos_method == oos["method"] and clf.meta.oos_threshold == pytest.approx(oos["threshold"])


def test_predictions_below_the_threshold_are_out_of_scope(trained):
    out, _, texts, _ = trained
    clf = Classifier.load(out)
    clf.meta.oos_method, clf.meta.oos_threshold = "msp", 1.01
    prediction = clf.predict_one(texts[0])
    assert prediction.label == OUT_OF_SCOPE
    assert prediction.confidence == pytest.approx(1 - prediction.top_confidence, abs=1e-3)


def test_save_load_round_trip_and_single_path_match_batch_path(trained):
    out, _, texts, _ = trained
    first, second = Classifier.load(out), Classifier.load(out)
    batch = first.predict(texts[:6])
    assert batch == second.predict(texts[:6])
    for text, expected in zip(texts[:6], batch):
        single = first.predict_one(text)
        assert single.label == expected.label
        assert single.confidence == pytest.approx(expected.confidence, abs=1e-3)


def test_int8_quantized_model_predicts(trained):
    out, _, texts, _ = trained
    plain, quantized = Classifier.load(out).predict(texts), Classifier.load(out, quantize=True).predict(texts)
    agree = sum(a.top_label == b.top_label for a, b in zip(plain, quantized)) / len(texts)
    assert agree >= 0.8


def test_int8_loads_use_the_threshold_chosen_on_the_int8_models_scores(trained):
    out, metrics, texts, _ = trained
    plain, quantized = Classifier.load(out), Classifier.load(out, quantize=True)
    int8 = metrics["oos"]["int8"]
    assert plain.meta.oos_threshold == pytest.approx(metrics["oos"]["threshold"])
    assert quantized.meta.oos_threshold == pytest.approx(int8["threshold"]) == quantized.meta.int8_oos_threshold
    assert 0.0 <= int8["oos_recall"] <= 1.0
    # the int8 threshold is where the int8 scores of the validation data put it: rejecting by it
    # out-of-scope examples scored by the int8 model matches the recall recorded
    scores = np.array([p.oos_score for p in quantized.predict(TINY_OOS)])
    assert (scores < int8["threshold"]).mean() == pytest.approx(int8["oos_recall"], abs=0.2)


def test_sentiment_model_without_oos_never_says_out_of_scope(tmp_path, tiny_config):
    texts = ["i love it", "great service thanks", "awesome", "so happy", "this is terrible", "awful delay",
             "worst airline ever", "i hate this", "flight at 5pm", "what is the baggage allowance",
             "is the flight on time", "send me the schedule"]
    labels = ["positive"] * 4 + ["negative"] * 4 + ["neutral"] * 4
    metrics = train_classifier(texts, labels, tiny_config, tmp_path, task="sentiment", progress=False)
    assert metrics["oos"] is None
    predictions = Classifier.load(tmp_path).predict(texts)
    assert {p.label for p in predictions} <= {"negative", "neutral", "positive"}


def test_intent_examples_labelled_out_of_scope_become_validation_examples(tmp_path, tiny_config, tiny_data):
    texts, labels = tiny_data
    tiny_config.oos, tiny_config.max_train_steps = True, 5
    metrics = train_classifier(texts + TINY_OOS, labels + [OUT_OF_SCOPE] * len(TINY_OOS), tiny_config, tmp_path,
                               progress=False)
    assert metrics["n_oos_val"] == len(TINY_OOS)
    assert OUT_OF_SCOPE not in Classifier.load(tmp_path).labels


def test_stratified_split_keeps_a_training_example_of_every_class():
    train, val = split_stratified(["a"] * 10 + ["b"] * 1, 0.3, seed=0)
    assert len(val) == 3 and 10 in train


def test_one_label_is_refused(tmp_path, tiny_config):
    with pytest.raises(ValueError, match="at least two labels"):
        train_classifier(["a", "b"], ["x", "x"], tiny_config, tmp_path, progress=False)


def test_neighbours_choice_is_recorded_and_a_voting_model_saves_its_index(trained):
    out, metrics, texts, labels = trained
    choice = metrics["neighbours"]
    assert {"k", "temperature", "weight", "val_accuracy"} <= set(choice)
    clf = Classifier.load(out)
    assert (clf.meta.knn_k, clf.meta.knn_weight) == (choice["k"], choice["weight"])
    assert (out / "neighbours.safetensors").is_file() == (choice["weight"] > 0 or "knn" in clf.meta.oos_method)


def test_a_neighbours_vote_moves_predictions_toward_the_training_labels(tmp_path, tiny_config, tiny_data):
    """With the vote forced to dominate, every training text gets its own label back."""
    texts, labels = tiny_data
    tiny_config.epochs = 1  # a barely trained head: the vote has to do the work
    train_classifier(texts, labels, tiny_config, tmp_path, progress=False)
    clf = Classifier.load(tmp_path)
    if clf.neighbours is None:  # the tiny head won on validation: build the index the way training does
        from nlu.classifier import model_infer
        from nlu.neighbours import neighbours_fit

        _, feats = model_infer(clf.model, clf._ids(texts), clf.pad_id)
        clf.neighbours = neighbours_fit(feats.numpy(), np.array([clf.labels.index(y) for y in labels]))
    clf.meta.knn_k, clf.meta.knn_temperature, clf.meta.knn_weight = 1, 0.05, 0.99
    assert [p.top_label for p in clf.predict(texts)] == labels


def test_probe_choice_is_recorded_and_a_chosen_probe_is_saved_and_used(trained):
    out, metrics, texts, _ = trained
    choice = metrics["probe"]
    assert choice["layers_tried"] == [1]  # the tiny encoder's only middle layer
    assert (out / "probe.safetensors").is_file() == (choice["layer"] > 0)
    clf = Classifier.load(out)
    assert (clf.model.probe_layer, clf.model.probe_weight) == (choice["layer"], choice["weight"])
    from nlu.classifier import layer_features, model_infer

    ids = clf._ids(texts)
    clf.model.probe_layer, clf.model.probe_weight = 1, 0.0
    without, _ = model_infer(clf.model, ids, clf.pad_id)
    clf.model.probe_weight = 0.5
    with_probe, _ = model_infer(clf.model, ids, clf.pad_id)
    with torch.no_grad():
        added = 0.5 * clf.model.probe(layer_features(clf.model, ids, clf.pad_id, (1,))[1].clone())
    assert np.allclose(with_probe.numpy(), (without + added).numpy(), atol=1e-4)


def test_a_probe_on_a_frozen_base_saves_no_encoder_and_its_loads_share_one(tiny_encoder, tiny_data, tmp_path):
    """Every store's probe on the multilingual base would otherwise save and hold its own 465 MB copy."""
    from inference.registry import model_nbytes
    from nlu.classifier import ClassifierMeta, classifier_load
    from nlu.predict import Classifier

    texts, labels = tiny_data
    config = TrainConfig(base_encoder=tiny_encoder, epochs=0, max_length=16, neighbours=False, probe=False)
    train_classifier(texts, labels, config, tmp_path / "a", task="intent", progress=False)
    train_classifier(texts, labels, config, tmp_path / "b", task="intent", progress=False)
    assert not (tmp_path / "a" / "encoder").exists()
    a, b = Classifier.load(tmp_path / "a", quantize=True), Classifier.load(tmp_path / "b", quantize=True)
    assert a.model.encoder is b.model.encoder
    assert a.predict(texts[:3]) and [p.label for p in a.predict(texts)] == [p.label for p in b.predict(texts)]
    assert model_nbytes(a.model) < 10_000  # the heads only: the shared encoder is no one model's
    calls = []
    hook = a.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    try:  # one message through two probes on one base (intent and sentiment): the base runs once
        assert a.predict_one(texts[0]).label == b.predict_one(texts[0]).label
        assert len(calls) == 1
        b.predict_one(texts[1])
        assert len(calls) == 2
    finally:
        hook.remove()
    tuned = TrainConfig(base_encoder=tiny_encoder, epochs=1, max_length=16, neighbours=False, probe=False)
    train_classifier(texts, labels, tuned, tmp_path / "c", task="intent", progress=False)
    assert (tmp_path / "c" / "encoder").is_dir()  # fine-tuned: its own
    meta = ClassifierMeta(**{k: v for k, v in json.loads((tmp_path / "a" / "nlu.json").read_text()).items()
                             if k != "format"} | {"base_encoder": str(tmp_path / "gone")})
    (tmp_path / "a" / "nlu.json").write_text(json.dumps(asdict(meta)))
    with pytest.raises(FileNotFoundError, match="base encoder folder"):
        classifier_load(tmp_path / "a")

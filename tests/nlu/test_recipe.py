"""The training recipe's speed-ups: early stop, no second feature pass without fine-tuning, the probe's threads."""
import json

import pytest
import torch

import nlu.train as train_module
from nlu.predict import Classifier
from nlu.train import TrainConfig, head_fit_linear_probe, recipe, train_classifier


def test_patience_stops_once_validation_accuracy_stops_improving_and_keeps_the_best_epoch(tmp_path, tiny_config,
                                                                                          tiny_data):
    tiny_config.epochs, tiny_config.patience = 30, 2
    metrics = train_classifier(*tiny_data, tiny_config, tmp_path, progress=False)
    history = metrics["history"]
    accuracies = [h["val_accuracy"] for h in history]
    assert len(history) < 30 and "stopped" in history[-1]  # 8 validation examples cannot improve 30 times
    best = accuracies.index(max(accuracies))
    assert accuracies[best + 1:] and all(a <= accuracies[best] for a in accuracies[best + 1:])
    assert len(history) - 1 - best == 2  # stopped two epochs after the best one
    assert metrics["steps"] < 30 * 2  # 16 training examples, batches of 8


def test_without_patience_every_epoch_runs(tmp_path, tiny_config, tiny_data):
    tiny_config.epochs = 6
    metrics = train_classifier(*tiny_data, tiny_config, tmp_path, progress=False)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4, 5, 6]


def test_a_probed_model_reuses_the_probes_features_and_keeps_the_pretrained_encoder(tmp_path, tiny_config,
                                                                                   tiny_data, monkeypatch):
    passes = []
    original = train_module.layer_features

    def counting(model, ids, *args, **kwargs):
        passes.append(len(ids))
        return original(model, ids, *args, **kwargs)

    monkeypatch.setattr(train_module, "layer_features", counting)
    tiny_config.epochs, tiny_config.linear_probe_init, tiny_config.oos = 0, True, True
    metrics = train_classifier(*tiny_data, tiny_config, tmp_path, progress=False)
    assert metrics["steps"] == 0 and metrics["history"] == []
    assert passes.count(metrics["n_train"]) == 1  # one pass over the training data, not two
    assert metrics["neighbours"] is not None and metrics["oos"]["method"]
    pretrained = train_module.encoder_load(tiny_config.base_encoder)[1].state_dict()
    saved = Classifier.load(tmp_path).model.encoder.state_dict()
    assert all(torch.equal(pretrained[k], saved[k]) for k in pretrained)


def test_fine_tuning_reads_the_training_features_again(tmp_path, tiny_config, tiny_data, monkeypatch):
    passes = []
    original = train_module.layer_features
    monkeypatch.setattr(train_module, "layer_features",
                        lambda model, ids, *a, **k: passes.append(len(ids)) or original(model, ids, *a, **k))
    tiny_config.epochs, tiny_config.linear_probe_init = 2, True
    metrics = train_classifier(*tiny_data, tiny_config, tmp_path, progress=False)
    assert metrics["steps"] > 0 and passes.count(metrics["n_train"]) == 2  # the encoder moved: fresh features


def test_freeze_embeddings_leaves_the_word_embeddings_as_pretrained(tmp_path, tiny_config, tiny_data):
    tiny_config.epochs, tiny_config.freeze_embeddings = 3, True
    train_classifier(*tiny_data, tiny_config, tmp_path, progress=False)
    name = "embeddings.word_embeddings.weight"
    pretrained = train_module.encoder_load(tiny_config.base_encoder)[1].state_dict()
    saved = Classifier.load(tmp_path).model.encoder.state_dict()
    assert torch.equal(pretrained[name], saved[name])
    assert not torch.equal(pretrained["encoder.layer.0.attention.self.query.weight"],
                           saved["encoder.layer.0.attention.self.query.weight"])


def test_the_linear_probe_fit_gives_back_the_callers_threads():
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        targets = torch.arange(40) % 4
        features = torch.randn(40, 8) * 0.3 + torch.nn.functional.one_hot(targets, 8).float()
        head = torch.nn.Linear(8, 4)
        head_fit_linear_probe(head, features, targets)
        assert torch.get_num_threads() == 2
        assert (head(features).argmax(1) == targets).float().mean() == 1.0
    finally:
        torch.set_num_threads(before)


def test_recipes_are_overrides_of_train_config():
    for task, fine_tune in (("intent", False), ("sentiment", False), ("sentiment", True)):
        config = TrainConfig(**recipe(task, fine_tune))
        assert config.max_length >= 64
    assert recipe("sentiment")["epochs"] == 0 and recipe("sentiment")["linear_probe_init"]
    assert recipe("sentiment", fine_tune=True)["linear_probe_init"] is False
    assert recipe("intent")["patience"] >= 1
    with pytest.raises(KeyError):
        recipe("responder")
    json.dumps(recipe("intent"))  # plain values: stored with the model's metrics

from nlu import OUT_OF_SCOPE
from nlu.evaluate import classification_metrics, oos_metrics


def test_metrics_accuracy_macro_f1_and_per_class():
    report = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert report["accuracy"] == 0.75
    assert report["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert report["per_class"]["b"]["precision"] == 0.6667
    assert report["macro_f1"] == round((0.6667 + 0.8) / 2, 4)


def test_rejecting_an_in_scope_message_counts_against_in_scope_accuracy():
    truth = ["a", "b", OUT_OF_SCOPE, OUT_OF_SCOPE]
    predicted = ["a", OUT_OF_SCOPE, OUT_OF_SCOPE, "a"]
    assert oos_metrics(truth, predicted) == {"in_scope_accuracy": 0.5, "oos_recall": 0.5, "oos_precision": 0.5}

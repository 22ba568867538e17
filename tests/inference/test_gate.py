"""The gate on tiny models: a first model is promoted, a candidate trained on shuffled labels is refused,
an equal one is promoted, and the scores are those of the model as the workers serve it."""
import random

import pytest

from chatbot.learning import evalsets
from chatbot.models import ModelVersion, TrainingExample
from inference import registry as loaded
from inference.gate import Scores, gate_decide, gate_evaluate
from inference.retraining import training_data
from inference.nlu_services import intent_model_train
from tests.factories import TenantFactory
from tests.nlu.conftest import TINY_INTENTS, tiny_config, tiny_encoder  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)
Status = ModelVersion.Status
INTENT = ModelVersion.Kind.INTENT


@pytest.fixture
def tenant(settings, tmp_path):
    settings.MODELS_DIR = tmp_path / "models"
    settings.EVAL_FROZEN_FRACTION = 0.25  # two of each intent's eight examples
    settings.NLU_QUANTIZE = True
    tenant = TenantFactory()
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=text, intent=intent)
                                        for intent, texts in TINY_INTENTS.items() for text in texts)
    evalsets.frozen_ensure(tenant, INTENT)
    return tenant


def train(tenant, config, shuffle: bool = False, activate: bool = False) -> ModelVersion:
    data = training_data(tenant, INTENT)  # the builder's rows: the frozen set left out, as retrain does
    rows = [(r.text, r.label) for r in data.rows]
    if shuffle:  # the deliberately worse candidate
        labels = [label for _, label in rows]
        random.Random(3).shuffle(labels)
        rows = [(text, label) for (text, _), label in zip(rows, labels)]
    return intent_model_train(tenant, config, activate=activate, progress=False, rows=rows, data_hash=data.sha256)


def test_first_model_is_promoted_with_its_scores_stored_as_it_serves(tenant, tiny_config):
    candidate = train(tenant, tiny_config)
    assert candidate.status == Status.CANDIDATE
    version, verdict = gate_evaluate(candidate.pk)
    assert verdict.promoted and version.status == Status.ACTIVE
    assert version.decision["reason"].startswith("first intent model")
    assert version.decision["loaded_as"] == "int8" and version.decision["active"] is None
    frozen = version.evaluations["frozen"]
    assert frozen["n"] == 8 and frozen["active"] is None and 0 <= frozen["accuracy"] <= 1
    assert {"macro_f1", "oos_recall", "in_scope_accuracy"} <= set(frozen)
    # The same figure the worker's own loader gives, message by message.
    from inference.labelling import predict_active

    loaded.reload()
    texts = [(e.text, e.label) for e in evalsets.frozen_set(tenant, INTENT)]
    right = sum(predict_active(INTENT, tenant.id, text)[0].label == label for text, label in texts)
    assert frozen["accuracy"] == round(right / len(texts), 4)


def test_a_candidate_trained_on_shuffled_labels_is_refused_and_an_equal_one_promoted(tenant, tiny_config):
    active, _ = gate_evaluate(train(tenant, tiny_config).pk)
    assert active.evaluations["frozen"]["accuracy"] >= 0.5  # the tiny model learned something to lose

    worse, verdict = gate_evaluate(train(tenant, tiny_config, shuffle=True).pk)
    assert not verdict.promoted and worse.status == Status.REJECTED
    assert verdict.reason.startswith("refused") and "frozen" in verdict.reason
    frozen = worse.evaluations["frozen"]
    assert frozen["accuracy"] < frozen["active"]["accuracy"] - 0.01
    assert worse.decision["deltas"]["frozen_accuracy"] == round(frozen["accuracy"] - frozen["active"]["accuracy"], 4)
    assert worse.decision["tolerance"] == 0.01 and worse.decision["active"] == active.version
    active.refresh_from_db()
    assert active.status == Status.ACTIVE

    same, verdict = gate_evaluate(train(tenant, tiny_config).pk)  # same data and seed: no worse
    assert verdict.promoted and same.status == Status.ACTIVE, verdict.reason
    active.refresh_from_db()
    assert active.status == Status.RETIRED and same.parent_id == active.pk


def test_the_decision_rule():
    active = Scores(frozen={"n": 100, "accuracy": 0.90, "macro_f1": 0.9}, corrections={"n": 10, "fixed": 0.1})

    def verdict(accuracy, fixed, n_fixed=10):
        return gate_decide(INTENT, Scores(frozen={"n": 100, "accuracy": accuracy, "macro_f1": accuracy},
                                          corrections={"n": n_fixed, "fixed": fixed}), active,
                           tolerance=0.01, min_fixed=0.5)

    assert verdict(0.89, 0.6)[0]  # exactly one point lost: allowed
    assert not verdict(0.885, 0.9)[0]
    promoted, reason, deltas = verdict(0.95, 0.5)  # half the corrections is not "most"
    assert not promoted and "fixes 50% of 10 corrections" in reason and deltas["corrections_fixed"] == 0.4
    assert verdict(0.95, None, n_fixed=0)[0]  # no corrections yet: nothing to fix
    assert gate_decide(INTENT, Scores(frozen={"n": 0}, corrections={"n": 0}), None)[0]  # first model


def test_an_active_version_trained_on_the_frozen_set_is_judged_by_its_own_validation_figure():
    """A version trained before the frozen set was drawn scores near 1.0 on it; the candidate, which never
    saw it, is compared with the active version's validation accuracy, within the frozen set's noise."""
    flattered = Scores(frozen={"n": 136, "accuracy": 0.978}, corrections={"n": 0})

    def verdict(accuracy, baseline=0.899):
        return gate_decide(INTENT, Scores(frozen={"n": 136, "accuracy": accuracy}, corrections={"n": 0}),
                           flattered, tolerance=0.01, baseline=baseline)

    assert not verdict(0.853, baseline=None)[0]  # against the flattered score: refused
    promoted, reason, deltas = verdict(0.853)  # 0.899 - 0.01 - 2 * 0.030 = 0.828
    assert promoted and "trained on the frozen set" in reason and deltas == {"frozen_accuracy_vs_validation": -0.046}
    assert not verdict(0.80)[0]  # beyond the noise: refused
    assert not verdict(0.018)[0]  # a shuffled-label candidate


@pytest.mark.django_db
def test_the_baseline_is_used_only_for_versions_the_builder_did_not_train(tenant):
    from inference.gate import _baseline

    outside = ModelVersion(kind="intent", tenant=tenant, metrics={"val_accuracy": 0.9}, data_hash="")
    built = ModelVersion(kind="intent", tenant=tenant, metrics={"val_accuracy": 0.9}, data_hash="ab" * 32)
    assert _baseline(outside) == 0.9 and _baseline(built) is None and _baseline(None) is None
    assert _baseline(ModelVersion(kind="intent", tenant=tenant, metrics={}, data_hash="")) is None

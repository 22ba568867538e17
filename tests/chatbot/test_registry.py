"""The model registry's life cycle (candidate, active, retired, rejected; rollback) and retrain requests."""
import pytest
from django.db import IntegrityError, transaction

from chatbot import events

from chatbot.learning import services as learning, registry
from chatbot.errors import ServiceError
from chatbot.models import ModelVersion, TrainingRun
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)
Status = ModelVersion.Status
INTENT = ModelVersion.Kind.INTENT


@pytest.fixture
def promoted(monkeypatch):
    heard = []
    monkeypatch.setitem(events._subscribers, events.MODEL_PROMOTED, [heard.append])
    return heard


def register(tenant, name, activate=False):
    return registry.model_version_register(INTENT, tenant, name, f"/models/{name}", {}, activate=activate)


def test_first_version_is_active_and_later_ones_are_candidates_with_their_parent(promoted):
    tenant = TenantFactory()
    first = register(tenant, "v1", activate=True)
    second = register(tenant, "v2")
    assert first.status == Status.ACTIVE and first.promoted_at is not None and first.parent is None
    assert second.status == Status.CANDIDATE and second.parent == first
    assert registry.model_version_active(INTENT, tenant) == first
    assert [e["version"] for e in promoted] == ["v1"]


def test_promotion_retires_the_previous_version_stores_the_verdict_and_is_idempotent(promoted):
    tenant = TenantFactory()
    first = register(tenant, "v1", activate=True)
    second = register(tenant, "v2")
    decision = {"promoted": True, "reason": "better"}
    registry.model_version_promote(second.pk, decision=decision, evaluations={"frozen": {"accuracy": 0.9}})
    registry.model_version_promote(second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Status.RETIRED, Status.ACTIVE)
    assert second.decision == decision and second.evaluations["frozen"]["accuracy"] == 0.9
    assert [(e["version"], e["previous"], e["action"]) for e in promoted] == [
        ("v1", None, "promoted"), ("v2", first.pk, "promoted")]


def test_one_active_version_per_kind_and_owner_is_a_database_rule():
    tenant = TenantFactory()
    register(tenant, "v1", activate=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(kind=INTENT, tenant=tenant, version="x", path="/x", status=Status.ACTIVE)


def test_a_rejected_candidate_is_never_active_and_an_active_one_cannot_be_rejected():
    tenant = TenantFactory()
    first = register(tenant, "v1", activate=True)
    worse = register(tenant, "v2")
    registry.model_version_reject(worse.pk, decision={"promoted": False, "reason": "lost 5 points"})
    worse.refresh_from_db()
    assert worse.status == Status.REJECTED and worse.decision["reason"] == "lost 5 points"
    assert registry.model_version_active(INTENT, tenant) == first
    with pytest.raises(ValueError):
        registry.model_version_reject(first.pk, decision={})


def test_rollback_restores_the_parent_and_then_the_one_before(promoted):
    tenant = TenantFactory()
    v1 = register(tenant, "v1", activate=True)
    v2 = register(tenant, "v2")
    registry.model_version_promote(v2.pk)
    v3 = register(tenant, "v3")
    registry.model_version_promote(v3.pk)
    assert registry.model_version_rollback(INTENT, tenant) == v2
    v3.refresh_from_db()
    assert v3.status == Status.RETIRED and v3.decision["rolled_back"] is True
    assert registry.model_version_rollback(INTENT, tenant.pk) == v1
    assert promoted[-1]["action"] == "rolled_back" and promoted[-1]["version"] == "v1"


def test_rollback_with_nothing_earlier_says_so():
    tenant = TenantFactory()
    with pytest.raises(registry.NothingToRollBack, match="no active"):
        registry.model_version_rollback(INTENT, tenant)
    register(tenant, "v1", activate=True)
    with pytest.raises(registry.NothingToRollBack, match="no earlier version"):
        registry.model_version_rollback(INTENT, tenant)


def test_other_tenants_and_kinds_are_untouched_by_a_promotion():
    a, b = TenantFactory(), TenantFactory()
    register(a, "a1", activate=True)
    b1 = register(b, "b1", activate=True)
    a2 = register(a, "a2")
    registry.model_version_promote(a2.pk)
    b1.refresh_from_db()
    assert b1.status == Status.ACTIVE and registry.model_version_active(INTENT, b) == b1


def test_retrain_request_queues_one_run_per_kind_and_never_twice(monkeypatch):
    tenant = TenantFactory()
    sent = []
    monkeypatch.setitem(events._subscribers, events.RETRAIN_REQUESTED, [lambda event: sent.append(event["run"])])
    runs = learning.retrain_request(tenant, "all", trigger=TrainingRun.Trigger.CONSOLE)
    again = learning.retrain_request(tenant, "intent")
    assert [r.kind for r in runs] == ["intent", "sentiment", "responder"]
    assert runs[1].tenant is None  # sentiment is the platform's one model
    assert again[0].pk == runs[0].pk and sorted(sent) == sorted(r.pk for r in runs)
    learning.run_update(runs[0].pk, status=TrainingRun.Status.PROMOTED)
    run = TrainingRun.objects.get(pk=runs[0].pk)
    assert run.progress == 1.0 and run.finished_at is not None
    assert learning.retrain_request(tenant, "intent")[0].pk != runs[0].pk


def test_retrain_request_refuses_an_unknown_kind():
    with pytest.raises(ServiceError, match="Unknown model kind"):
        learning.retrain_request(TenantFactory(), "poetry")

"""Retraining on tiny models: a run goes from queued to its verdict with its progress recorded, is safe to
run twice, never trains on the frozen set; beat asks only when enough corrections came; the `retrain` and
`rollback` commands, their errors included."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from chatbot.learning import evalsets, services as learning

from chatbot.conversations import services
from chatbot.models import Message, ModelVersion, TrainingExample, TrainingRun
from inference.retraining import retrain_due, retrain_run, training_data
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, agent_of
from tests.nlu.conftest import TINY_INTENTS, tiny_config, tiny_encoder  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)
Status = TrainingRun.Status
INTENT = ModelVersion.Kind.INTENT


@pytest.fixture
def tenant(settings, tmp_path, tiny_encoder):
    settings.MODELS_DIR = tmp_path / "models"
    settings.EVAL_FROZEN_FRACTION = 0.25
    settings.BASE_ENCODER_PATH = tiny_encoder  # the commands train with the platform's settings
    settings.MULTILINGUAL_BASE = "never"  # sentiment too
    tenant = TenantFactory()
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=text, intent=intent)
                                        for intent, texts in TINY_INTENTS.items() for text in texts)
    return tenant


def queued(tenant, kind=INTENT) -> TrainingRun:
    return TrainingRun.objects.create(tenant=tenant, kind=kind, trigger=TrainingRun.Trigger.COMMAND)


def test_a_run_goes_from_queued_to_promoted_with_progress_and_is_safe_to_run_twice(tenant, tiny_config):
    run = queued(tenant)
    heard = []
    done = retrain_run(run.pk, config=tiny_config, echo=lambda stage, progress: heard.append((stage, progress)))
    assert done.status == Status.PROMOTED and done.progress == 1.0 and done.finished_at and done.started_at
    assert done.detail.startswith("first intent model") and done.candidate.status == ModelVersion.Status.ACTIVE
    stages = [stage for stage, _ in heard]
    assert stages[0] == "drawing the frozen evaluation set"
    assert any(s.startswith("training ") and s.endswith(" steps") for s in stages), stages
    assert any(s.startswith("evaluating") for s in stages)
    assert [p for _, p in heard] == sorted(p for _, p in heard)  # progress only goes forward
    assert done.candidate.data_hash == training_data(tenant, INTENT).sha256

    again = retrain_run(run.pk, config=tiny_config)  # a second delivery of the task
    assert again.status == Status.PROMOTED and ModelVersion.objects.filter(tenant=tenant).count() == 1


def test_the_frozen_set_is_never_in_the_training_data(tenant):
    frozen = evalsets.frozen_ensure(tenant, INTENT)
    assert len(frozen) == 8
    trained = {evalsets.text_key(r.text) for r in training_data(tenant, INTENT).rows}
    assert trained and not trained & evalsets.frozen_keys(tenant, INTENT)


def test_a_run_another_worker_holds_is_left_alone_unless_that_worker_is_gone(tenant, tiny_config):
    run = queued(tenant)
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, started_at=timezone.now(), stage="training")
    assert retrain_run(run.pk, config=tiny_config).status == Status.RUNNING
    assert not ModelVersion.objects.filter(tenant=tenant).exists()
    assert retrain_run(run.pk, config=tiny_config, take_over=True).status == Status.PROMOTED


def test_a_run_without_data_fails_with_the_reason(settings, tmp_path, tiny_config):
    settings.MODELS_DIR = tmp_path / "models"
    tenant = TenantFactory()
    TrainingExample.objects.create(tenant=tenant, text="hello", intent="greeting")
    run = retrain_run(queued(tenant).pk, config=tiny_config)
    assert run.status == Status.FAILED and "at least two intents" in run.detail
    assert not ModelVersion.objects.filter(tenant=tenant).exists()


def correct(tenant, agent, n: int) -> None:
    for i in range(n):
        conversation = ConversationFactory(tenant=tenant)
        asked = MessageFactory(conversation=conversation, sender=Message.Sender.VISITOR, text=f"where parcel {i}")
        reply = MessageFactory(conversation=conversation, sender=Message.Sender.BOT, reply_to=asked)
        services.feedback_agent_record(agent, reply.id, "down", correct_intent="order_status")


def test_beat_retrains_a_tenant_once_it_has_enough_new_corrections(settings):
    settings.RETRAIN_AFTER_CORRECTIONS = 3
    tenant, quiet = TenantFactory(), TenantFactory()
    agent = agent_of(tenant)
    correct(tenant, agent, 2)
    correct(quiet, agent_of(quiet), 1)
    assert retrain_due() == []
    correct(tenant, agent, 1)
    [run] = retrain_due()
    assert (run.tenant, run.kind, run.trigger, run.corrections_seen) == (tenant, INTENT, "schedule", 3)
    assert retrain_due() == []  # the queued run saw these three: not asked twice
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.REFUSED)
    assert retrain_due() == [] and TrainingRun.objects.count() == 1
    correct(tenant, agent, 3)
    assert [(r.kind, r.corrections_seen) for r in retrain_due()] == [(INTENT, 6)]
    settings.RETRAIN_AFTER_CORRECTIONS = 0
    correct(tenant, agent, 5)
    assert retrain_due() == []


def test_retrain_command_here_promotes_then_rollback_restores(tenant):
    out = StringIO()
    call_command("retrain", tenant.slug, "--kind", "intent", "--here", stdout=out)
    text = out.getvalue()
    assert "intent: promoted: first intent model" in text and "% training" in text, text
    first = ModelVersion.objects.get(tenant=tenant)
    call_command("retrain", tenant.slug, "--kind", "intent", "--here", stdout=out)
    second = ModelVersion.objects.exclude(pk=first.pk).get(tenant=tenant)
    assert second.status == ModelVersion.Status.ACTIVE, second.decision  # same data: no worse
    assert TrainingRun.objects.filter(tenant=tenant, status=Status.PROMOTED).count() == 2

    out = StringIO()
    call_command("rollback", tenant.slug, "--kind", "intent", stdout=out)
    assert out.getvalue().strip() == f"intent model {first.version} is active now (was {second.version})"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (ModelVersion.Status.ACTIVE, ModelVersion.Status.RETIRED)


def test_retrain_command_errors_and_queueing(tenant, settings):
    with pytest.raises(CommandError, match="unknown tenant 'nope'"):
        call_command("retrain", "nope")
    with pytest.raises(CommandError, match="Unknown model kind 'intents'"):
        call_command("retrain", tenant.slug, "--kind", "intents")
    with pytest.raises(CommandError, match="has 0 \\(message, reply\\) pairs"):
        call_command("retrain", tenant.slug, "--kind", "responder")
    with pytest.raises(CommandError, match="nothing to roll back"):
        call_command("rollback", tenant.slug, "--kind", "sentiment")
    with pytest.raises(CommandError, match="unknown tenant"):
        call_command("rollback", "nope", "--kind", "intent")

    out = StringIO()
    call_command("retrain", tenant.slug, "--kind", "intent", "--no-wait", stdout=out)
    [run] = TrainingRun.objects.filter(tenant=tenant)
    assert out.getvalue().strip() == f"intent: retrain run #{run.pk} queued"
    # No worker consumes this test's training queue: waiting ends with what to start.
    with pytest.raises(CommandError, match=f"Start one with `celery -A chatbot worker -Q {settings.TRAINING_QUEUE}`"):
        call_command("retrain", tenant.slug, "--kind", "intent", "--start-timeout", "1", stdout=StringIO())
    assert list(learning.retrain_request(tenant, INTENT)) == [run]  # still the one queued run

"""Asking for a retrain and following it: the console's button, `manage.py retrain` and Celery beat
all come here, and a worker on the training queue does the work (inference.retraining).

chatbot never imports the worker side: a request is announced with the `retrain_requested` domain
event, which inference.dispatch answers by queueing the task (or, in one-process mode, a training thread).
"""
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chatbot import events
from chatbot.errors import ServiceError
from chatbot.models import Feedback, ModelVersion, Tenant, TrainingRun

KINDS = tuple(ModelVersion.Kind.values)
# Kinds trained per tenant; sentiment is one global model (tenant None).
TENANT_KINDS = (ModelVersion.Kind.INTENT, ModelVersion.Kind.RESPONDER)



def kinds_parse(kind: str) -> tuple[str, ...]:
    """`intent`, `sentiment`, `responder` or `all`, as the command and the console name them."""
    if kind == "all":
        return KINDS
    if kind not in KINDS:
        raise ServiceError(f"Unknown model kind {kind!r}; use one of {', '.join(KINDS)} or all.", "invalid_kind")
    return (kind,)


def run_owner(tenant: Tenant, kind: str) -> Tenant | None:
    """Whose model a retrain of `kind` for `tenant` trains: the tenant's, or the global sentiment model."""
    return None if kind == ModelVersion.Kind.SENTIMENT else tenant


def retrain_request(tenant: Tenant, kind: str = "all", *, trigger: str = TrainingRun.Trigger.COMMAND,
                    user: AbstractBaseUser | None = None, dispatch: bool = True) -> list[TrainingRun]:
    """Queue a retrain of each kind named; a kind already queued or running is not queued twice
    (its run is returned instead), so a double click or an overlapping beat adds nothing.
    `dispatch=False` records the run without handing it to a worker: the caller runs it itself."""
    runs = []
    for one in kinds_parse(kind):
        owner = run_owner(tenant, one)
        with transaction.atomic():
            Tenant.objects.select_for_update().filter(pk=tenant.pk).first()  # one request at a time per tenant
            pending = TrainingRun.objects.filter(tenant=owner, kind=one,
                                                 status__in=TrainingRun.ACTIVE_STATUSES).first()
            if pending is not None:
                runs.append(pending)
                continue
            run = TrainingRun.objects.create(tenant=owner, kind=one, trigger=trigger, requested_by=user,
                                             corrections_seen=corrections_count(tenant, one))
            if dispatch:
                events.emit({"type": events.RETRAIN_REQUESTED, "run": run.pk})
            runs.append(run)
    return runs


def run_update(run_id: int, **fields) -> None:
    """Progress and outcome of a run (stage, progress, status, detail, candidate), for the console."""
    status = fields.get("status")
    if status == TrainingRun.Status.RUNNING:
        fields.setdefault("started_at", timezone.now())
    elif status in (TrainingRun.Status.PROMOTED, TrainingRun.Status.REFUSED, TrainingRun.Status.FAILED):
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("progress", 1.0)
    TrainingRun.objects.filter(pk=run_id).update(**fields)


def corrections_count(tenant: Tenant, kind: str) -> int:
    """How many agent corrections a tenant's `kind` model has to learn from: a right intent (intent),
    a right reply (responder), a right sentiment (sentiment)."""
    feedback = Feedback.objects.filter(message__conversation__tenant=tenant, source=Feedback.Source.AGENT)
    if kind == ModelVersion.Kind.INTENT:
        return feedback.exclude(corrected_intent="").count()
    if kind == ModelVersion.Kind.SENTIMENT:
        return feedback.exclude(corrected_sentiment="").count()
    return feedback.exclude(correction="").count()

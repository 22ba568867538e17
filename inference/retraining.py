"""A retrain, from a queued TrainingRun to the gate's verdict: what the "inference.retrain" task (and
`manage.py retrain --here`, and one-process mode's training thread) runs.

    retrain_run(run_id)   # draws the frozen set, builds the data, trains a candidate, gates it

Safe to run twice: a finished run is skipped, one running elsewhere is left alone unless its worker
died (`take_over`, or it has run past RETRAIN_TIME_LIMIT). Progress goes into the run (stage,
progress) for the console and admin, and into the log.
"""
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from tqdm.auto import tqdm

from chatbot.errors import TRANSIENT_ERRORS, NotEnoughData, ServiceError
from chatbot.learning import evalsets, services as learning
from chatbot.models import Feedback, ModelVersion, Tenant, TrainingRun

from inference.gate import gate_evaluate

log = logging.getLogger(__name__)

Kind = ModelVersion.Kind
Status = TrainingRun.Status
DONE = (Status.PROMOTED, Status.REFUSED, Status.FAILED)
# Where each stage sits on the run's 0..1 progress.
STAGES = {"building data": 0.02, "training": 0.05, "evaluating": 0.85}
TRAIN_SHARE = STAGES["evaluating"] - STAGES["training"]
UPDATE_EVERY = 1.0  # seconds between progress writes while training


class RetrainError(NotEnoughData):
    """Something the user can fix before a retrain can run: too little data to train on."""


# --- progress -----------------------------------------------------------------------------

_reporters = threading.local()


class _ReportingTqdm(tqdm):
    """tqdm as the training loops use it, which also tells the current thread's reporter (if any) how far
    a training bar ("training intent", "train responder") has come, even when the bar is not shown."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._steps = 0
        self._reporter = getattr(_reporters, "current", None)
        desc = str(kwargs.get("desc") or "")
        self._reports = self._reporter is not None and desc.startswith(("training ", "train responder"))
        if self._reports:
            self._reporter.bar_started()

    def update(self, n=1):
        self._steps += n or 0
        if self._reports and self.total:
            self._reporter.steps(self._steps, self.total)
        return super().update(n)


_installed = False
_install_lock = threading.Lock()


def _install() -> None:
    """Let the NLU's and the responder's training loops report progress without changing them: their
    `tqdm` becomes `_ReportingTqdm`, which behaves the same when no reporter listens."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import nlu.train

        from inference.responder import train as responder_train

        nlu.train.tqdm = _ReportingTqdm
        responder_train.tqdm = _ReportingTqdm
        _installed = True


class Reporter:
    """Writes a run's stage and progress (throttled) and logs it; `echo` hears every write too."""

    def __init__(self, run_id: int, echo: Callable[[str, float], None] | None = None):
        self.run_id, self.echo = run_id, echo
        self.bars, self.last = 0, 0.0

    def stage(self, stage: str, progress: float) -> None:
        learning.run_update(self.run_id, stage=stage[:200], progress=round(progress, 4))
        log.info("retrain run %s: %s (%.0f%%)", self.run_id, stage, progress * 100)
        if self.echo:
            self.echo(stage, progress)

    def bar_started(self) -> None:
        self.bars += 1

    def steps(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < UPDATE_EVERY and done < total:
            return
        self.last = now
        model = f" (model {self.bars})" if self.bars > 1 else ""
        self.stage(f"training{model} {done}/{total} steps", STAGES["training"] + TRAIN_SHARE * done / total)


@contextmanager
def reporting(reporter: Reporter):
    _install()
    previous = getattr(_reporters, "current", None)
    _reporters.current = reporter
    try:
        yield reporter
    finally:
        _reporters.current = previous


# --- the run ---------------------------------------------------------------------------------


def _claim(run_id: int, take_over: bool) -> TrainingRun | None:
    """Mark the run running, or None when it is finished or another live worker runs it."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(of=("self",)).select_related("tenant").filter(pk=run_id).first()
        if run is None:
            log.warning("retrain run %s does not exist", run_id)
            return None
        if run.status in DONE:
            log.info("retrain run %s is already %s", run_id, run.status)
            return None
        if run.status == Status.RUNNING:
            stale = run.started_at and run.started_at < timezone.now() - timedelta(seconds=settings.RETRAIN_TIME_LIMIT)
            if not (take_over or stale):
                log.info("retrain run %s is running elsewhere", run_id)
                return None
            log.warning("retrain run %s: taking over from a worker that is gone", run_id)
        run.status, run.started_at, run.stage, run.progress, run.detail = (
            Status.RUNNING, timezone.now(), "starting", 0.0, "")
        run.save(update_fields=["status", "started_at", "stage", "progress", "detail"])
        return run


def training_data(owner: Tenant | None, kind: str):
    """The owner's training data of `kind` (inference.training_data: deduplicated, personal data
    replaced, the frozen set left out)."""
    from inference.training_data import training_data as build

    return build(owner, kind)


def _weighted(rows: list) -> list:
    """Rows repeated by their weight (a correction counts twice): the trainers take no weights."""
    return [r for r in rows for _ in range(max(1, round(getattr(r, "weight", 1.0))))]


def candidate_train(owner: Tenant | None, kind: str, rows: list, data_hash: str, config=None,
                    progress: bool = False) -> ModelVersion:
    """Train and register (not activate) a candidate of `kind` on the builder's rows."""
    rows = _weighted(rows)
    if kind == Kind.INTENT:
        from inference.nlu_services import intent_model_train

        return intent_model_train(owner, config, activate=False, progress=progress,
                                  rows=[(r.text, r.label) for r in rows if r.label], data_hash=data_hash)
    if kind == Kind.SENTIMENT:
        from inference.nlu_services import sentiment_model_train

        return sentiment_model_train(config=config, activate=False, progress=progress,
                                     rows=[(r.text, r.label) for r in rows if r.label], data_hash=data_hash)
    from inference.responder import TrainPair
    from inference.responder_services import responder_train

    pairs = [TrainPair(r.text, r.reply, intent=r.label or "", history=list(getattr(r, "history", ())))
             for r in rows if r.reply]
    return responder_train(owner, config, activate=False, progress=progress, pairs=pairs, data_hash=data_hash)


def retrain_run(run_id: int, *, take_over: bool = False, config=None,
                echo: Callable[[str, float], None] | None = None) -> TrainingRun | None:
    """Run one queued retrain to its outcome: promoted, refused (the gate's reason) or failed (the
    error); the active model keeps serving throughout. Returns the run, or None when it was not this
    call's to run. `config` overrides the kind's training settings (tests, benches)."""
    run = _claim(run_id, take_over)
    if run is None:
        return TrainingRun.objects.filter(pk=run_id).first()
    reporter = Reporter(run_id, echo)
    owner, kind = run.tenant, run.kind
    started = time.perf_counter()
    try:
        with reporting(reporter):
            reporter.stage("drawing the frozen evaluation set", 0.01)
            frozen = evalsets.frozen_ensure(owner, kind)
            reporter.stage(f"building data ({len(frozen)} frozen examples kept out)", STAGES["building data"])
            data = training_data(owner, kind)
            if not data.rows:
                raise RetrainError(f"there is no {kind} training data for {_whose(owner)}")
            reporter.stage(f"training on {len(data.rows)} examples", STAGES["training"])
            candidate = candidate_train(owner, kind, data.rows, data.sha256, config)
            learning.run_update(run_id, candidate=candidate)
            reporter.stage("evaluating", STAGES["evaluating"])

            def evaluating(fraction: float, what: str) -> None:
                reporter.stage(f"evaluating: {what}", STAGES["evaluating"] + (0.99 - STAGES["evaluating"]) * fraction)

            version, verdict = gate_evaluate(candidate.pk, progress=evaluating)
    except Exception as exc:  # noqa: BLE001 - the run records why; the active model keeps serving
        if isinstance(exc, TRANSIENT_ERRORS):
            raise  # the database went away: the task retries and takes the run over
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, (ServiceError, ValueError)):  # a refusal or a data problem: no traceback
            log.exception("retrain run %s failed", run_id)
            detail = f"{type(exc).__name__}: {detail}"
        learning.run_update(run_id, status=Status.FAILED, stage="failed", detail=detail[:2000])
        log.warning("retrain run %s (%s of %s) failed: %s", run_id, kind, _whose(owner), detail)
        if echo:
            echo(f"failed: {detail}", 1.0)
        return TrainingRun.objects.get(pk=run_id)
    status = Status.PROMOTED if verdict.promoted else Status.REFUSED
    stage = f"{status} {version.version}" + (f" (serves {verdict.serving})" if verdict.serving else "")
    learning.run_update(run_id, status=status, stage=stage, detail=verdict.reason)
    log.info("retrain run %s (%s of %s) %s in %.0f s: %s", run_id, kind, _whose(owner), status,
             time.perf_counter() - started, verdict.reason)
    if echo:
        echo(f"{stage}: {verdict.reason}", 1.0)
    return TrainingRun.objects.get(pk=run_id)


def run_fail(run_id: int, detail: str) -> None:
    """A run whose task died for good (hard time limit) without recording it."""
    TrainingRun.objects.filter(pk=run_id, status__in=TrainingRun.ACTIVE_STATUSES).update(
        status=Status.FAILED, stage="failed", detail=detail[:2000], finished_at=timezone.now(), progress=1.0)


def _whose(owner: Tenant | None) -> str:
    return f"tenant {owner.slug!r}" if owner else "the platform"


# --- before queueing, and on a schedule ------------------------------------------------------


def retrain_check(tenant: Tenant, kind: str) -> None:
    """Refuse at once, with what to do, a retrain that cannot have data (before a worker is asked)."""
    from chatbot.models import KnowledgeEntry, SentimentExample, TrainingExample

    if kind == Kind.INTENT:
        intents = (TrainingExample.objects.filter(tenant=tenant).exclude(intent="").values("intent")
                   .distinct().count())
        if intents < 2:
            raise RetrainError(f"tenant {tenant.slug!r} has labelled examples of {intents} intent(s); training "
                               "needs two or more (import some with import_examples)")
    elif kind == Kind.RESPONDER:
        pairs = (KnowledgeEntry.objects.filter(tenant=tenant, is_active=True).count()
                 + TrainingExample.objects.filter(tenant=tenant).exclude(response="").count())
        if pairs < 2:
            raise RetrainError(f"tenant {tenant.slug!r} has {pairs} (message, reply) pairs; add knowledge entries "
                               "or import transcripts with `import_examples --response` first")
    elif kind == Kind.SENTIMENT:
        if SentimentExample.objects.values("label").distinct().count() < 2:
            raise RetrainError("there are no sentiment examples of two labels; load some (seed_demo)")


def retrain_due() -> list[TrainingRun]:
    """Celery beat: a retrain for each tenant kind with RETRAIN_AFTER_CORRECTIONS or more corrections its
    newest run has not seen (0 turns this off). Sentiment, one global model, retrains on request only."""
    threshold = settings.RETRAIN_AFTER_CORRECTIONS
    if threshold <= 0:
        return []
    tenants = Tenant.objects.filter(is_active=True, pk__in=Feedback.objects.filter(source=Feedback.Source.AGENT)
                                    .values("message__conversation__tenant"))
    runs = []
    for tenant in tenants.order_by("pk"):
        for kind in learning.TENANT_KINDS:
            count = learning.corrections_count(tenant, kind)
            newest = TrainingRun.objects.filter(tenant=tenant, kind=kind).order_by("-created_at", "-pk").first()
            seen = newest.corrections_seen if newest else 0
            if count - seen >= threshold:
                log.info("tenant %s has %d new %s corrections: retraining", tenant.slug, count - seen, kind)
                runs += learning.retrain_request(tenant, kind, trigger=TrainingRun.Trigger.SCHEDULE)
    return runs

import time

from django.conf import settings
from django.core.management.base import CommandError

from chatbot.learning import services as learning
from chatbot.management.base import ServiceCommand, tenant_argument
from chatbot.models import TrainingRun
from chatbot.conversations.selectors import tenant_require
from inference.retraining import DONE, retrain_check, retrain_run

POLL_SECONDS = 1.0


class Command(ServiceCommand):
    help = ("Retrain a tenant's models: train a candidate on its current data and let the gate promote it "
            "only if it is no worse on the frozen evaluation set and fixes the agents' corrections.")

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("--kind", default="all", help="intent, sentiment, responder or all (default)")
        parser.add_argument("--no-wait", action="store_true", help="queue the retrain and return at once")
        parser.add_argument("--here", action="store_true", help="train in this process (no worker needed)")
        parser.add_argument("--start-timeout", type=float, default=60.0,
                            help="seconds to wait for a training worker to take a queued run (default 60)")

    def handle(self, *args, tenant, kind, no_wait, here, start_timeout, **options):
        tenant = tenant_require(tenant)
        for one in learning.kinds_parse(kind):
            retrain_check(tenant, one)
        runs = learning.retrain_request(tenant, kind, trigger=TrainingRun.Trigger.COMMAND, dispatch=not here)
        for run in runs:
            self.stdout.write(f"{run.kind}: retrain run #{run.pk} {run.status}")
        if no_wait and not here:
            return
        failed = []
        for run in runs:
            if here:
                retrain_run(run.pk, echo=lambda stage, progress, kind=run.kind: self._progress(kind, stage, progress))
            run = self._wait(run, start_timeout)
            self.stdout.write(f"{run.kind}: {run.status}" + (f": {run.detail}" if run.detail else ""))
            if run.status == TrainingRun.Status.FAILED:
                failed.append(run)
        if failed:
            raise CommandError("; ".join(f"{r.kind} retrain failed: {r.detail}" for r in failed))

    def _progress(self, kind: str, stage: str, progress: float) -> None:
        self.stdout.write(f"{kind}: {progress:4.0%} {stage}")

    def _wait(self, run: TrainingRun, start_timeout: float) -> TrainingRun:
        """Follow a run to its end, printing each new stage; a run no worker takes is a clear error."""
        queued_since = time.monotonic()
        deadline = time.monotonic() + settings.RETRAIN_TIME_LIMIT + 300
        last = None
        while True:
            run.refresh_from_db()
            if run.status in DONE:
                return run
            if (run.stage, round(run.progress, 2)) != last and run.status == TrainingRun.Status.RUNNING:
                last = (run.stage, round(run.progress, 2))
                self._progress(run.kind, run.stage, run.progress)
            if run.status == TrainingRun.Status.QUEUED and time.monotonic() - queued_since > start_timeout:
                raise CommandError(
                    f"no training worker took retrain run #{run.pk} within {start_timeout:.0f} s; it stays queued. "
                    f"Start one with `celery -A chatbot worker -Q {settings.TRAINING_QUEUE}`, or train here "
                    "with `manage.py retrain --here`.")
            if time.monotonic() > deadline:
                raise CommandError(f"retrain run #{run.pk} is still {run.status} ({run.stage}); gave up waiting")
            time.sleep(POLL_SECONDS)

"""The console's models page in headless Chromium against the real ASGI server: a manager clicks Retrain,
the queued run appears, and its progress moves without a reload as the run is updated (as a training
worker would, through chatbot.learning.services.run_update); then she rolls the intent model back through the
confirm step. No worker takes the training queue here, so nothing is trained. A screenshot goes to
test-artifacts/models.png."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.learning import services as learning

from chatbot.conversations import services
from chatbot.models import ModelVersion, TrainingRun
from tests.browser import test_widget
from tests.browser.test_console import PASSWORD, log_in, new_page, off_loop
from tests.conftest import needs_services
from tests.factories import TenantFactory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.live, pytest.mark.browser, needs_services, pytest.mark.django_db(transaction=True)]

browser = test_widget.browser
S = ModelVersion.Status


def seed_versions(tenant) -> None:
    """An intent model the gate promoted over a first one, a refused candidate, and a responder for agents."""
    now = timezone.now()
    first = ModelVersion.objects.create(
        kind="intent", tenant=tenant, version="20250301-090000", path="/m/1", status=S.RETIRED,
        metrics={"n_train": 640},
        decision={"promoted": True, "reason": "activated at registration"}, promoted_at=now - timedelta(days=3))
    # Evaluations and decisions as inference.gate writes them.
    active = ModelVersion.objects.create(
        kind="intent", tenant=tenant, version="20250302-090000", path="/m/2", status=S.ACTIVE, parent=first,
        data_hash="9f2c41d07be3" + "0" * 52, metrics={"n_train": 812}, promoted_at=now - timedelta(days=2),
        evaluations={"frozen": {"n": 58, "accuracy": 0.931, "macro_f1": 0.904, "oos_recall": 0.8,
                                "active": {"n": 58, "accuracy": 0.925, "macro_f1": 0.9, "oos_recall": 0.75}},
                     "corrections": {"n": 20, "fixed": 0.85, "active": {"n": 20, "fixed": 0.1}}},
        decision={"promoted": True, "reason": "promoted: accuracy 0.931 vs 0.925 on 58 frozen examples (tolerance "
                                              "0.010); fixes 85% of 20 corrections (needs more than 50%)",
                  "metric": "accuracy", "tolerance": 0.01, "min_fixed": 0.5, "active": "20250301-090000",
                  "deltas": {"frozen_accuracy": 0.006, "corrections_fixed": 0.75}, "loaded_as": "int8"})
    ModelVersion.objects.create(
        kind="intent", tenant=tenant, version="20250303-090000", path="/m/3", status=S.REJECTED, parent=active,
        metrics={"n_train": 830},
        evaluations={"frozen": {"n": 58, "accuracy": 0.61, "macro_f1": 0.55, "active": {"n": 58, "accuracy": 0.931,
                                                                                         "macro_f1": 0.904}},
                     "corrections": {"n": 20, "fixed": 0.2, "active": {"n": 20, "fixed": 0.85}}},
        decision={"promoted": False, "reason": "refused: accuracy 0.610 vs 0.931 on 58 frozen examples (tolerance "
                                               "0.010); fixes 20% of 20 corrections (needs more than 50%)",
                  "metric": "accuracy", "tolerance": 0.01, "deltas": {"frozen_accuracy": -0.321}})
    ModelVersion.objects.create(
        kind="responder", tenant=tenant, version="20250302-100000", path="/m/r", status=S.ACTIVE, serving="assist",
        metrics={"train_pairs": 300}, promoted_at=now - timedelta(days=2),
        evaluations={"frozen": {"n": 58, "rouge_l": 0.33, "bleu": 12.4, "active": None},
                     "serving": {"serving": "assist", "reason": "retrieval's ROUGE-L 0.41 beat the responder's 0.33",
                                 "responder": {"rouge_l": 0.33}, "retrieval": {"rouge_l": 0.41}}},
        decision={"promoted": True, "reason": "first responder model (rouge_l 0.330 on 58 frozen examples)",
                  "serving": "assist"})
    ModelVersion.objects.create(kind="sentiment", tenant=None, version="20250201-080000", path="/m/s",
                                status=S.ACTIVE, metrics={"n_train": 5000}, promoted_at=now - timedelta(days=30))


def test_a_manager_retrains_and_follows_the_run_live_then_rolls_back(browser, live_server_url):
    tenant = TenantFactory(name="Alpha Outdoor", slug="alpha")
    services.agent_add(tenant, "mia", password=PASSWORD, role="manager", name="Mia Manager")
    seed_versions(tenant)
    page = new_page(browser, width=1440, height=900)
    refused = []  # the console's Content-Security-Policy allows nothing inline
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        log_in(page, live_server_url, "mia")
        page.locator(".topnav a", has_text="Models").click()
        expect(page).to_have_url(re.compile(r"/console/models/$"))
        intent = page.locator('section[data-kind="intent"]')
        expect(intent.locator(".model-active")).to_contain_text("20250302-090000")
        expect(intent.locator('[data-verdict="refused"]')).to_have_count(1)
        expect(page.locator('section[data-kind="responder"] [data-serving="assist"]')).to_have_text(
            "agent suggestions only")
        expect(page.locator("tr.runs-empty")).to_have_count(1)

        intent.locator('[data-action="retrain"]').click()
        expect(page.locator(".model-notice")).to_contain_text("Retraining the intent classifier")
        run = TrainingRun.objects.get()
        assert (run.status, run.trigger, run.requested_by.username) == ("queued", "console", "mia")
        row = page.locator(f'tr.run[data-run="{run.pk}"]')
        expect(row).to_have_attribute("data-status", "queued")
        expect(page.locator("#runs-live")).to_be_visible()

        # From here on no reload: the page polls runs.json while the run is active.
        page.evaluate("window.__same_page = true")
        off_loop(learning.run_update, run.pk, status=TrainingRun.Status.RUNNING, stage="training 120/300 steps",
                 progress=0.4)
        expect(row).to_have_attribute("data-status", "running", timeout=10_000)
        expect(row.locator(".run-percent")).to_have_text("40 %")
        expect(row.locator(".run-stage")).to_have_text("training 120/300 steps")
        expect(intent.locator("[data-kind-run]")).to_contain_text("running: training 120/300 steps (40 %)")
        assert row.locator("progress").evaluate("p => p.value") == pytest.approx(0.4)
        page.screenshot(path=str(test_widget.ARTIFACTS / "models.png"), full_page=True)
        page.screenshot(path="/tmp/helpers/models_page.png", full_page=True)

        off_loop(learning.run_update, run.pk, stage="gate: scoring the frozen set", progress=0.9)
        expect(row.locator(".run-percent")).to_have_text("90 %", timeout=10_000)
        off_loop(learning.run_update, run.pk, status=TrainingRun.Status.REFUSED,
                 detail="lost 3.2 points on the frozen set (tolerance 1.0)")
        expect(row).to_have_attribute("data-status", "refused", timeout=10_000)
        expect(row.locator(".run-detail")).to_have_text("lost 3.2 points on the frozen set (tolerance 1.0)")
        expect(page.locator("#runs-finished")).to_be_visible()
        expect(page.locator("#runs-live")).to_be_hidden()
        assert page.evaluate("window.__same_page") is True

        # Roll back, through the confirm step.
        page.reload()
        intent.locator('summary[data-action="rollback"]').click()
        confirm = intent.locator(".confirm-box")
        expect(confirm).to_contain_text("Retire 20250302-090000 and restore 20250301-090000?")
        confirm.locator('[data-action="rollback-confirm"]').click()
        expect(page.locator(".model-notice")).to_contain_text("Rolled the intent classifier back to version "
                                                              "20250301-090000")
        expect(intent.locator(".model-active")).to_contain_text("20250301-090000")
        assert ModelVersion.objects.get(tenant=tenant, kind="intent", status=S.ACTIVE).version == "20250301-090000"
        assert page.script_errors == [] and refused == []
    finally:
        page.context.close()

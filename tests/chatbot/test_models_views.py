"""The console's models page through the Django test client: who may see it, the versions with the gate's
verdicts and both sets of scores, the retrain and rollback buttons, runs.json, and the admin's read-only
runs and evaluation sets. No training runs here: a retrain request stays queued (no worker takes the
training queue in tests, and on_commit never fires inside a test's transaction)."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.learning import services as learning, selectors as learning_selectors
from chatbot.models import EvalExample, Feedback, ModelVersion, TrainingRun
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, UserFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db

S = ModelVersion.Status
PAGE, RUNS, RETRAIN, ROLLBACK = "/console/models/", "/console/models/runs.json", "/console/models/retrain/", \
    "/console/models/rollback/"


@pytest.fixture
def alpha():
    return TenantFactory(name="Alpha Outdoor", slug="alpha")


@pytest.fixture
def bravo():
    return TenantFactory(name="Bravo Hidden Store", slug="bravo")


@pytest.fixture
def manager(alpha):
    return agent_of(alpha, role="manager", username="mia", first_name="Mia", last_name="Manager")


@pytest.fixture
def agent(alpha):
    return agent_of(alpha, username="ada")


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def version(kind, tenant, name, status, minutes_ago=0, **fields) -> ModelVersion:
    v = ModelVersion.objects.create(kind=kind, tenant=tenant, version=name, path=f"/models/{name}", status=status,
                                    **fields)
    ModelVersion.objects.filter(pk=v.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    v.refresh_from_db()
    return v


FROZEN = {"candidate": {"accuracy": 0.931, "macro_f1": 0.904}, "active": {"accuracy": 0.925, "macro_f1": 0.9},
          "n": 58}
CORRECTIONS = {"fixed": 0.85, "active_fixed": 0.1, "n": 20}


@pytest.fixture
def history(alpha, bravo):
    """Alpha's intent model: a retired first version, the active one the gate promoted, a refused
    candidate; its responder serving agents only; the platform's sentiment model; Bravo's intent model."""
    first = version("intent", alpha, "20250301-first", S.RETIRED, 300, metrics={"n_train": 640},
                    decision={"promoted": True, "reason": "activated at registration"},
                    promoted_at=timezone.now() - timedelta(hours=5))
    active = version("intent", alpha, "20250302-active", S.ACTIVE, 200, parent=first, data_hash="ab12cd34ef56" * 5,
                     metrics={"n_train": 812}, evaluations={"frozen": FROZEN, "corrections": CORRECTIONS},
                     decision={"promoted": True, "tolerance": 0.01,
                               "reason": "within tolerance on the frozen set; fixed 85 % of corrections"},
                     promoted_at=timezone.now() - timedelta(hours=3))
    refused = version("intent", alpha, "20250303-refused", S.REJECTED, 100, parent=active, metrics={"n_train": 830},
                      evaluations={"frozen": {"candidate_accuracy": 0.61, "active_accuracy": 0.925},
                                   "corrections": {"fixed": 0.2}},
                      decision={"promoted": False, "reason": "lost 31.5 points on the frozen set (tolerance 1.0)"})
    responder = version("responder", alpha, "20250302-resp", S.ACTIVE, 150, serving="assist",
                        metrics={"train_pairs": 300},
                        evaluations={"serving": {"n": 40, "serving": "assist", "store_serving": "assist", "intents": {
                            "refund": {"n": 12, "gain": -0.021, "ci95_low": -0.08, "serving": "assist"},
                            "greeting": {"n": 28, "gain": 0.004, "ci95_low": -0.01, "serving": "assist"}}}},
                        decision={"promoted": True, "reason": "first responder",
                                  "serving_reason": "retrieval's ROUGE-L 0.41 beat the responder's 0.33"})
    sentiment = version("sentiment", None, "20250201-sent", S.ACTIVE, 5000, metrics={"n_train": 5000})
    theirs = version("intent", bravo, "bravo-secret-version", S.ACTIVE, 10,
                     decision={"promoted": True, "reason": "bravo-secret-reason"})
    return {"first": first, "active": active, "refused": refused, "responder": responder, "sentiment": sentiment,
            "theirs": theirs}


def correction(tenant, agent_user, **fields) -> Feedback:
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=tenant))
    asked = MessageFactory(conversation=conversation, sender="visitor", text="where is my parcel")
    reply = MessageFactory(conversation=conversation, sender="bot", text="Hello!", reply_to=asked)
    return Feedback.objects.create(message=reply, source=Feedback.Source.AGENT, agent=agent_user, **fields)


# --- who may see it -----------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client):
    for url in (PAGE, RUNS):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post(RETRAIN, {"tenant": "alpha", "kind": "intent"}).status_code == 302
    assert not TrainingRun.objects.exists()


def test_agents_get_403_and_no_run(alpha, agent):
    client = client_of(agent)
    assert client.get(PAGE).status_code == 403
    assert client.get(RUNS, {"tenant": "alpha"}).status_code == 403
    assert client.post(RETRAIN, {"tenant": "alpha", "kind": "intent"}).status_code == 403
    assert client.post(ROLLBACK, {"tenant": "alpha", "kind": "intent"}).status_code == 403
    assert not TrainingRun.objects.exists()


def test_another_stores_models_answer_like_a_missing_store(manager, history):
    client = client_of(manager)
    for url in (PAGE, RUNS):
        theirs, nowhere = client.get(url, {"tenant": "bravo"}), client.get(url, {"tenant": "no-such"})
        assert theirs.status_code == nowhere.status_code == 404 and theirs.content == nowhere.content
    before = list(ModelVersion.objects.filter(tenant__slug="bravo").values("id", "status"))
    for url in (RETRAIN, ROLLBACK):
        assert client.post(url, {"tenant": "bravo", "kind": "intent"}).status_code == 404
    assert list(ModelVersion.objects.filter(tenant__slug="bravo").values("id", "status")) == before
    assert not TrainingRun.objects.exists()
    html = client.get(PAGE).content.decode()
    assert "bravo-secret" not in html and "Bravo Hidden Store" not in html


def test_the_nav_links_the_page_for_managers_only(manager, agent):
    assert 'href="/console/models/"' in client_of(manager).get("/console/canned/").content.decode()
    assert 'href="/console/models/"' not in client_of(agent).get("/console/canned/").content.decode()


# --- what it shows ------------------------------------------------------------------------------------


def test_the_page_shows_each_kinds_versions_verdicts_and_both_sets_of_scores(manager, history):
    response = client_of(manager).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    kinds = {k["kind"]: k for k in response.context["kinds"]}
    intent = kinds["intent"]
    assert intent["active"]["version"] == "20250302-active" and intent["active"]["rows"] == 812
    assert intent["active"]["data_hash"] == "ab12cd34ef56" and intent["rollback_to"] == "20250301-first"
    assert [v["version"] for v in intent["earlier"]] == ["20250303-refused", "20250301-first"]
    # The active version: the gate's verdict and the frozen set, candidate beside the version it replaced.
    frozen = intent["active"]["scores"][0]
    assert frozen["key"] == "frozen" and frozen["columns"] == ["candidate", "active"] and frozen["size"] == 58
    assert frozen["rows"] == [{"name": "accuracy", "cells": ["93.1 %", "92.5 %"]},
                              {"name": "macro f1", "cells": ["90.4 %", "90.0 %"]}]
    corrections = intent["active"]["scores"][1]
    # Flat scores: 'active_fixed' is the active version's, a plain 'fixed' the candidate's.
    assert corrections["key"] == "corrections" and corrections["columns"] == ["candidate", "active"]
    assert corrections["rows"] == [{"name": "fixed", "cells": ["85.0 %", "10.0 %"]}] and corrections["size"] == 20
    for text in ("20250302-active", "812 rows", "Gate: promoted", "within tolerance on the frozen set", "93.1 %",
                 "90.4 %", "85.0 %", "Frozen set", "58 examples", "Corrections set", "tolerance", "ab12cd34ef56"):
        assert text in html, text
    # The refused candidate: its status, the refusal and its reason, its 'candidate_x' / 'active_x' scores.
    refused = intent["earlier"][0]
    assert refused["status"] == "rejected" and refused["decision"]["promoted"] is False
    assert refused["scores"][0]["rows"] == [{"name": "accuracy", "cells": ["61.0 %", "92.5 %"]}]
    assert "Gate: refused" in html and "lost 31.5 points on the frozen set" in html
    # The responder: whom it serves and why; the platform's sentiment model read-only.
    assert kinds["responder"]["active"]["serving_label"] == "agent suggestions only"
    assert "retrieval&#x27;s ROUGE-L 0.41 beat the responder&#x27;s 0.33" in html
    assert [(i["intent"], i["visitors"]) for i in kinds["responder"]["active"]["intents"]] == [
        ("greeting", False), ("refund", False)]
    assert 'data-intent="refund" data-serves="assist"' in html and "-0.021" in html
    assert "0 answered by the responder, 2 as agents' suggestions only" in html
    assert "store_serving" not in html
    assert kinds["sentiment"]["global"] and not kinds["sentiment"]["may_change"]
    assert 'name="kind" value="sentiment"' not in html and "Read-only: kept by the platform" in html
    assert html.count('data-action="retrain"') == 2
    assert "bravo-secret" not in html


def test_a_superuser_may_retrain_and_roll_back_the_platforms_sentiment_model(alpha, history):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = client_of(root)
    html = client.get(PAGE, {"tenant": "alpha"}).content.decode()
    assert 'name="kind" value="sentiment"' in html
    client.post(RETRAIN, {"tenant": "alpha", "kind": "sentiment"})
    run = TrainingRun.objects.get()
    assert run.tenant is None and run.kind == "sentiment" and run.requested_by == root
    # Alpha's manager sees the platform's run, not who asked for it.
    manager = agent_of(alpha, role="manager", username="mo")
    shown = client_of(manager).get(RUNS).json()["runs"]
    assert [(r["kind"], r["requested_by"]) for r in shown] == [("sentiment", "the platform")]


def test_a_manager_may_not_retrain_or_roll_back_the_platforms_sentiment_model(manager, history):
    client = client_of(manager)
    for url in (RETRAIN, ROLLBACK):
        response = client.post(url, {"tenant": "alpha", "kind": "sentiment"})
        assert response.status_code == 403 and "belongs to the platform" in response.content.decode()
    assert not TrainingRun.objects.exists()
    assert ModelVersion.objects.get(kind="sentiment").status == S.ACTIVE


def test_a_store_without_models_gets_a_page_that_says_so(manager):
    html = client_of(manager).get(PAGE).content.decode()
    assert "No trained intent classifier yet" in html and "No retrain yet." in html
    assert 'data-action="rollback"' not in html


def test_corrections_waiting_are_those_the_last_run_did_not_see(alpha, manager, history):
    for i in range(5):
        correction(alpha, manager, corrected_intent=f"intent-{i}")
    correction(alpha, manager, correction="The right reply.")
    kinds = {k["kind"]: k for k in client_of(manager).get(PAGE).context["kinds"]}
    assert kinds["intent"]["waiting"] == 5 and kinds["responder"]["waiting"] == 1
    learning.retrain_request(alpha, "intent", trigger=TrainingRun.Trigger.CONSOLE, user=manager)
    correction(alpha, manager, corrected_intent="late")
    assert learning_selectors.corrections_waiting(alpha, "intent") == 1
    assert learning_selectors.corrections_waiting(alpha, "responder") == 1


# --- the buttons --------------------------------------------------------------------------------------


def test_retrain_queues_one_run_and_a_second_click_shows_the_running_one(alpha, manager, history):
    client = client_of(manager)
    response = client.post(RETRAIN, {"tenant": "alpha", "kind": "intent"}, follow=True)
    assert response.redirect_chain == [("/console/models/?tenant=alpha", 302)]
    run = TrainingRun.objects.get()
    assert (run.tenant, run.kind, run.trigger, run.status, run.requested_by) == (
        alpha, "intent", "console", "queued", manager)
    html = response.content.decode()
    assert f"Retraining the intent classifier (run #{run.pk})" in html and 'data-run="%d"' % run.pk in html
    assert "Retraining…" in html and 'data-active="true"' in html

    learning.run_update(run.pk, status=TrainingRun.Status.RUNNING, stage="training 120/300 steps", progress=0.4)
    again = client.post(RETRAIN, {"tenant": "alpha", "kind": "intent"}, follow=True).content.decode()
    assert TrainingRun.objects.count() == 1
    assert f"already being retrained (run #{run.pk}, running, training 120/300 steps, 40 %)" in again


def test_retrain_of_an_unknown_kind_says_so_and_queues_nothing(manager):
    html = client_of(manager).post(RETRAIN, {"tenant": "alpha", "kind": "all"}, follow=True).content.decode()
    assert "Unknown model kind &#x27;all&#x27;" in html and "alert-error" in html
    assert not TrainingRun.objects.exists()


def test_rollback_restores_the_previous_version_then_refuses_with_a_message(alpha, manager, history):
    client = client_of(manager)
    html = client.get(PAGE).content.decode()
    assert "Retire 20250302-active and restore 20250301-first?" in html
    response = client.post(ROLLBACK, {"tenant": "alpha", "kind": "intent"}, follow=True)
    assert response.redirect_chain == [("/console/models/?tenant=alpha", 302)]
    assert "Rolled the intent classifier back to version 20250301-first" in response.content.decode()
    statuses = dict(ModelVersion.objects.filter(tenant=alpha, kind="intent").values_list("version", "status"))
    assert statuses == {"20250301-first": S.ACTIVE, "20250302-active": S.RETIRED, "20250303-refused": S.REJECTED}
    kinds = {k["kind"]: k for k in response.context["kinds"]}
    assert kinds["intent"]["active"]["version"] == "20250301-first"
    rolled = next(v for v in kinds["intent"]["earlier"] if v["version"] == "20250302-active")
    assert rolled["decision"]["rolled_back"] and "rolled back in the console by mia" in str(rolled["decision"])
    # With nothing retired left to restore, the refusal is a message and nothing changes.
    ModelVersion.objects.filter(pk=history["active"].pk).update(status=S.REJECTED)
    refused = client.post(ROLLBACK, {"tenant": "alpha", "kind": "intent"}, follow=True).content.decode()
    assert "Nothing to roll back: the active intent model 20250301-first has no earlier version to restore" in refused
    assert ModelVersion.objects.get(tenant=alpha, kind="intent", status=S.ACTIVE).version == "20250301-first"
    empty = client.post(ROLLBACK, {"tenant": "alpha", "kind": "responder"}, follow=True).content.decode()
    assert "Nothing to roll back" in empty and ModelVersion.objects.get(tenant=alpha, kind="responder").is_active


def test_runs_json_lists_the_runs_newest_first_with_their_progress(alpha, manager, history):
    client = client_of(manager)
    assert client.get(RUNS).json() == {"tenant": {"slug": "alpha", "name": "Alpha Outdoor"}, "active": False,
                                       "runs": []}
    first = learning.retrain_request(alpha, "responder", trigger=TrainingRun.Trigger.SCHEDULE)[0]
    learning.run_update(first.pk, status=TrainingRun.Status.REFUSED, detail="lost 3 points on the frozen set",
                        candidate=history["refused"])
    second = learning.retrain_request(alpha, "intent", trigger=TrainingRun.Trigger.CONSOLE, user=manager)[0]
    learning.run_update(second.pk, status=TrainingRun.Status.RUNNING, stage="training 30/300 steps", progress=0.1)
    response = client.get(RUNS)
    assert response["Content-Type"] == "application/json" and response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["active"] is True and [r["id"] for r in data["runs"]] == [second.pk, first.pk]
    running, refused = data["runs"]
    assert set(running) == {"id", "kind", "trigger", "status", "stage", "progress", "percent", "detail",
                            "requested_by", "active", "candidate", "created_at", "created", "started_at", "started",
                            "finished_at", "finished"}
    assert (running["status"], running["stage"], running["progress"], running["percent"], running["requested_by"],
            running["active"], running["finished_at"]) == ("running", "training 30/300 steps", 0.1, 10,
                                                           "Mia Manager", True, None)
    assert running["started_at"] and running["started"].endswith("UTC")
    assert (refused["status"], refused["progress"], refused["percent"], refused["detail"], refused["candidate"],
            refused["requested_by"], refused["active"]) == ("refused", 1.0, 100, "lost 3 points on the frozen set",
                                                            "20250303-refused", "enough new corrections", False)
    assert refused["finished_at"]


def test_runs_json_keeps_the_newest_twenty(alpha, manager):
    TrainingRun.objects.bulk_create([TrainingRun(tenant=alpha, kind="intent", trigger="command", status="failed")
                                     for _ in range(25)])
    assert len(client_of(manager).get(RUNS).json()["runs"]) == 20


# --- the admin ----------------------------------------------------------------------------------------


def test_the_admin_lists_runs_and_evaluation_sets_read_only_and_only_of_the_staffs_stores(alpha, bravo):
    from django.contrib.auth.models import Permission

    staff = agent_of(alpha, username="staff", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="chatbot",
                                                         codename__startswith="view_"))
    TrainingRun.objects.create(tenant=alpha, kind="intent", trigger="console", stage="alpha-stage", progress=0.25)
    TrainingRun.objects.create(tenant=bravo, kind="intent", trigger="console", stage="bravo-secret-stage")
    EvalExample.objects.create(tenant=alpha, kind="intent", split="frozen", text="alpha frozen text", label="x")
    EvalExample.objects.create(tenant=bravo, kind="intent", split="frozen", text="bravo-secret text", label="x")
    client = client_of(staff)
    runs = client.get("/admin/chatbot/trainingrun/").content.decode()
    assert "alpha-stage" in runs and "25 %" in runs and "bravo-secret" not in runs
    examples = client.get("/admin/chatbot/evalexample/").content.decode()
    assert "alpha frozen text" in examples and "bravo-secret" not in examples
    run = TrainingRun.objects.get(tenant=alpha)
    page = client.get(f"/admin/chatbot/trainingrun/{run.pk}/change/").content.decode()
    assert "alpha-stage" in page and 'name="_save"' not in page
    assert client.get("/admin/chatbot/trainingrun/add/").status_code == 403


def test_the_gates_own_record_reads_as_candidate_beside_active_with_the_changes_in_points(alpha, manager):
    """inference.gate writes each set's figures with the active version's nested under "active" (None
    for a first model) and the changes under decision["deltas"]."""
    version("intent", alpha, "first", S.RETIRED, 20, evaluations={
        "frozen": {"n": 58, "accuracy": 0.9, "macro_f1": 0.88, "active": None},
        "corrections": {"n": 0, "fixed": None, "active": None}},
        decision={"promoted": True, "reason": "first intent model (accuracy 0.900 on 58 frozen examples)"})
    version("intent", alpha, "second", S.ACTIVE, 10, evaluations={
        "frozen": {"n": 58, "accuracy": 0.931, "macro_f1": 0.904, "in_scope_accuracy": 0.95, "oos_recall": 0.8,
                   "active": {"n": 58, "accuracy": 0.9, "macro_f1": 0.88, "in_scope_accuracy": 0.93,
                              "oos_recall": 0.7}},
        "corrections": {"n": 20, "fixed": 0.85, "active": {"n": 20, "fixed": 0.1}}},
        decision={"promoted": True, "reason": "promoted: accuracy 0.931 vs 0.900 on 58 frozen examples",
                  "metric": "accuracy", "tolerance": 0.01, "min_fixed": 0.5, "active": "first",
                  "deltas": {"frozen_accuracy": 0.031, "frozen_macro_f1": -0.004, "corrections_fixed": 0.75},
                  "loaded_as": "int8", "decided_at": "2025-03-02T09:00:00+00:00"})
    kinds = {k["kind"]: k for k in client_of(manager).get(PAGE).context["kinds"]}
    active = kinds["intent"]["active"]
    frozen, corrections = active["scores"]
    assert frozen["columns"] == ["candidate", "active"] and frozen["size"] == 58
    assert frozen["rows"] == [{"name": "accuracy", "cells": ["93.1 %", "90.0 %"]},
                              {"name": "macro f1", "cells": ["90.4 %", "88.0 %"]},
                              {"name": "in scope accuracy", "cells": ["95.0 %", "93.0 %"]},
                              {"name": "oos recall", "cells": ["80.0 %", "70.0 %"]}]
    assert corrections["rows"] == [{"name": "fixed", "cells": ["85.0 %", "10.0 %"]}] and corrections["size"] == 20
    others = {o["name"]: o["value"] for o in active["decision"]["others"]}
    assert others == {"judged on": "accuracy", "may lose": "1.0 points", "must fix more than": "50 %",
                      "compared with": "first", "change in frozen accuracy": "+3.1 pts",
                      "change in frozen macro f1": "-0.4 pts", "change in corrections fixed": "+75.0 pts",
                      "scored as": "int8", "decided": "2 Mar 2025, 09:00 UTC"}
    first = kinds["intent"]["earlier"][0]
    assert first["scores"][0]["columns"] == ["score"] and first["scores"][0]["rows"][0] == {
        "name": "accuracy", "cells": ["90.0 %"]}
    assert first["scores"][1]["rows"] == [{"name": "fixed", "cells": ["–"]}] and first["scores"][1]["size"] == 0

"""What the console's models page shows: each kind's versions with the gate's verdicts and scores, the
corrections not yet trained on, and the retrain runs. Reads only; the writes are chatbot.learning.services and
chatbot.learning.registry. The gate's `evaluations` and `decision` are free-form JSON, so they are turned into
small tables here, whatever keys they hold."""
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from chatbot.conversations import access

from chatbot.learning import services as learning
from chatbot.models import ModelVersion, Tenant, TrainingRun
from chatbot.conversations.payloads import display_name

Kind, Status = ModelVersion.Kind, ModelVersion.Status
RUNS_SHOWN = 20
EARLIER_SHOWN = 10

KIND_NAMES = {Kind.INTENT: "Intent classifier", Kind.SENTIMENT: "Sentiment classifier", Kind.RESPONDER: "Responder"}
KIND_HINTS = {
    Kind.INTENT: "Recognises what a visitor asks about; picks the answer.",
    Kind.SENTIMENT: "Hears frustration; one model for every store, kept by the platform.",
    Kind.RESPONDER: "Writes replies in the store's words.",
}
SERVING = {
    ModelVersion.Serving.VISITORS: ("answers visitors",
                                    "it beat the retrieval answer on the frozen set and invents no order numbers, "
                                    "e-mails, links or figures"),
    ModelVersion.Serving.ASSIST: ("agent suggestions only",
                                  "it did not beat the retrieval answer on the frozen set, or it wrote values found "
                                  "nowhere in the message, the knowledge or the training replies"),
}
# The first of these the training recorded is "trained on N rows".
ROW_KEYS = ("rows", "n_rows", "train_rows", "n_train", "train_pairs", "train_examples", "pairs", "examples")
# Scores shown as percentages (shares between 0 and 1).
SHARE_WORDS = ("accuracy", "f1", "fixed", "share", "rate", "precision", "recall", "rouge", "win")
# Column names of compared models, nested ({"active": {...}}) or as prefixes ("active_accuracy").
COMPARED = ("candidate", "active", "previous", "retrieval", "responder")
METRIC_ORDER = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "fixed", "rouge_l", "bleu", "wins")
DECISION_ORDER = ("metric", "tolerance", "min_fixed", "deltas", "active", "loaded_as", "decided_at")
# How many examples a set held: shown beside its name, not as a score.
SIZE_KEYS = ("n", "size", "count", "examples", "n_examples", "total")
SET_NAMES = {"frozen": "Frozen set", "corrections": "Corrections set", "serving": "Responder vs retrieval"}
SET_HINTS = {"frozen": "held out once, never trained on", "corrections": "the agents' corrections: share fixed",
             "serving": "replies on the frozen set"}


def run_owner_filter(tenant: Tenant) -> Q:
    """The runs a store's page lists: its own, and the platform's sentiment runs (its bot uses that model)."""
    return Q(tenant=tenant) | Q(tenant__isnull=True, kind=Kind.SENTIMENT)


def _metric_name(name: str) -> str:
    return str(name).replace("_", " ")


def score_format(name: str, value) -> str:
    """A score as the page shows it: shares as '93.1 %', counts as they are, the rest as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and 0 <= value <= 1 and any(w in str(name).lower() for w in SHARE_WORDS):
        return f"{value * 100:.1f} %"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, (list, tuple)) and len(value) <= 6 and all(isinstance(v, (int, float, str)) for v in value):
        return ", ".join(score_format(name, v) for v in value)
    return "…"


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def score_table(name: str, scores) -> dict:
    """One evaluation set as a table. {"candidate": {...}, "active": {...}} becomes one column per model;
    flat scores, one column; 'candidate_accuracy' / 'active_accuracy' pairs, one row with both columns."""
    table = {"key": name, "name": SET_NAMES.get(name, _metric_name(name).capitalize()),
             "hint": SET_HINTS.get(name, ""), "size": None, "columns": [], "rows": []}
    if not isinstance(scores, dict):
        table["columns"] = ["value"]
        table["rows"] = [{"name": "score", "cells": [score_format(name, scores)]}]
        return table
    size_key = next((k for k in SIZE_KEYS if isinstance(scores.get(k), int) and not isinstance(scores[k], bool)), None)
    if size_key:
        table["size"] = scores[size_key]
        scores = {k: v for k, v in scores.items() if k != size_key}
    # A compared model's scores may be None (no active version yet): no column for it.
    scores = {k: v for k, v in scores.items() if not (v is None and k in COMPARED)}
    nested = {k: v for k, v in scores.items() if isinstance(v, dict)}
    flat = {k: v for k, v in scores.items() if _scalar(v) or isinstance(v, (list, tuple))}
    columns: list[str] = list(nested)
    rows: dict[str, dict[str, object]] = {}
    for column, values in nested.items():
        for metric, value in values.items():
            if metric not in SIZE_KEYS and (_scalar(value) or isinstance(value, (list, tuple))):
                rows.setdefault(metric, {})[column] = value
    for key, value in flat.items():
        prefix, _, metric = key.partition("_")
        if metric and prefix in COMPARED:
            columns += [prefix] if prefix not in columns else []
            rows.setdefault(metric, {})[prefix] = value
        else:
            columns += ["value"] if "value" not in columns else []
            rows.setdefault(key, {})["value"] = value
    # Unprefixed scores beside 'active_x' ones are the candidate's: the gate scores the candidate.
    if "value" in columns and len(columns) > 1 and "candidate" not in columns:
        columns[columns.index("value")] = "candidate"
        for values in rows.values():
            if "value" in values:
                values["candidate"] = values.pop("value")
    if columns == ["value"]:
        columns = ["score"]
        for values in rows.values():
            values["score"] = values.pop("value")
    # The candidate first, then what it is compared with.
    order = {"candidate": 0, "active": 1, "previous": 2}
    columns.sort(key=lambda c: order.get(c, 3))
    table["columns"] = columns
    # PostgreSQL's jsonb keeps no key order: the main figures first, the rest by name.
    ordered = sorted(rows, key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m))
    table["rows"] = [{"name": _metric_name(metric), "cells": [score_format(metric, rows[metric][c])
                                                               if c in rows[metric] else "" for c in columns]}
                     for metric in ordered if rows[metric]]
    return table


DECISION_NAMES = {"metric": "judged on", "tolerance": "may lose", "min_fixed": "must fix more than",
                  "active": "compared with", "loaded_as": "scored as", "decided_at": "decided",
                  "rollback_reason": "rollback", "rolled_back_at": "rolled back"}
DECISION_HIDDEN = ("promoted", "reason", "rolled_back", "serving_reason", "serving")


def _decision_value(key: str, value) -> str:
    if key == "tolerance" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value * 100:.1f} points"
    if key == "min_fixed" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value * 100:.0f} %"
    if key.endswith("_at") and isinstance(value, str):
        moment = parse_datetime(value)
        return moment.strftime("%-d %b %Y, %H:%M UTC") if moment else value
    return score_format(key, value)


def _delta(value) -> str:
    """A change of a share, in points: '+0.6 pts'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value * 100:+.1f} pts"
    return score_format("delta", value)


def decision_view(decision: dict) -> dict:
    """The gate's verdict: promoted or refused, why, and any other keys it wrote as a small list (the
    changes against the active version in points)."""
    decision = decision if isinstance(decision, dict) else {}
    promoted = decision.get("promoted")
    others = []
    keys = sorted(decision, key=lambda k: (DECISION_ORDER.index(k) if k in DECISION_ORDER else len(DECISION_ORDER), k))
    for key in keys:
        value = decision[key]
        if key in DECISION_HIDDEN or value is None or value == "":
            continue
        if key == "deltas" and isinstance(value, dict):
            others += [{"name": f"change in {_metric_name(k)}", "value": _delta(v)} for k, v in value.items()]
        elif isinstance(value, dict):
            others += [{"name": f"{_metric_name(key)} {_metric_name(k)}", "value": score_format(k, v)}
                       for k, v in value.items() if _scalar(v)]
        elif _scalar(value) or isinstance(value, list):
            others.append({"name": DECISION_NAMES.get(key, _metric_name(key)), "value": _decision_value(key, value)})
    return {"known": bool(decision), "promoted": promoted if isinstance(promoted, bool) else None,
            "reason": str(decision.get("reason") or ""), "others": others,
            "rolled_back": bool(decision.get("rolled_back"))}


def trained_rows(metrics: dict) -> int | None:
    metrics = metrics if isinstance(metrics, dict) else {}
    for key in ROW_KEYS:
        if isinstance(metrics.get(key), int) and not isinstance(metrics.get(key), bool):
            return metrics[key]
    return None


def version_view(version: ModelVersion) -> dict:
    evaluations = version.evaluations if isinstance(version.evaluations, dict) else {}
    # The two sets the gate judges on first, then any other set it wrote.
    names = [n for n in ("frozen", "corrections") if n in evaluations] + [
        n for n in evaluations if n not in ("frozen", "corrections")]
    serving = SERVING.get(version.serving) if version.kind == Kind.RESPONDER else None
    decision = version.decision if isinstance(version.decision, dict) else {}
    compared = evaluations.get("serving") if isinstance(evaluations.get("serving"), dict) else {}
    why = decision.get("serving_reason") or compared.get("reason") or (serving[1] if serving else "")
    intents = serving_intents(compared)
    if compared:  # whom it serves and why are said above the tables, intent by intent below them
        evaluations = evaluations | {"serving": {k: v for k, v in compared.items()
                                                 if k not in ("serving", "reason", "store_serving", "intents")}}
    return {
        "id": version.pk, "version": version.version, "status": version.status, "created_at": version.created_at,
        "promoted_at": version.promoted_at, "rows": trained_rows(version.metrics),
        "data_hash": version.data_hash[:12], "data_hash_full": version.data_hash,
        "serving": version.serving, "serving_label": serving[0] if serving else "", "serving_why": why,
        "decision": decision_view(decision), "scores": [score_table(n, evaluations[n]) for n in names],
        "intents": intents, "intents_served": sum(i["visitors"] for i in intents),
        "intents_assist": sum(not i["visitors"] for i in intents),
    }


def serving_intents(compared: dict) -> list[dict]:
    """The gate's verdict per intent (a responder's): whom it serves there, on how many frozen examples, and
    its ROUGE-L gain over the answer without it; winners first."""
    judged = compared.get("intents") if isinstance(compared.get("intents"), dict) else {}
    rows = [{"intent": intent, "n": v.get("n"), "gain": v.get("gain"), "visitors": v.get("serving") == "visitors"}
            for intent, v in judged.items() if isinstance(v, dict)]
    return sorted(rows, key=lambda r: (not r["visitors"], r["intent"]))


def rollback_target(versions: list[ModelVersion]) -> ModelVersion | None:
    """The version a rollback would restore, as chatbot.learning.registry.model_version_rollback picks it: the
    active one's parent if retired, else the retired one promoted last."""
    current = next((v for v in versions if v.status == Status.ACTIVE), None)
    if current is None:
        return None
    earlier = [v for v in versions if v.status == Status.RETIRED and v.pk != current.pk]
    target = next((v for v in earlier if v.pk == current.parent_id), None)
    if target is None and earlier:
        target = max(earlier, key=lambda v: (v.promoted_at or v.created_at, v.pk))
    return target


def corrections_waiting(tenant: Tenant, kind: str) -> int:
    """Agent corrections the last retrain did not see (all of them before any run)."""
    last = TrainingRun.objects.filter(tenant=learning.run_owner(tenant, kind), kind=kind).order_by("-created_at",
                                                                                                  "-pk").first()
    total = learning.corrections_count(tenant, kind)
    return max(0, total - (last.corrections_seen if last else 0))


def kinds_overview(tenant: Tenant, user: AbstractBaseUser) -> list[dict]:
    """Per model kind: the active version, the earlier ones, whether the user may retrain or roll back."""
    platform = access.sees_all_tenants(user)
    kinds = []
    for kind in learning.KINDS:
        owner = learning.run_owner(tenant, kind)
        versions = list(ModelVersion.objects.filter(kind=kind, tenant=owner).order_by("-created_at", "-pk"))
        active = next((v for v in versions if v.status == Status.ACTIVE), None)
        earlier = [v for v in versions if v is not active]
        target = rollback_target(versions)
        running = TrainingRun.objects.filter(tenant=owner, kind=kind, status__in=TrainingRun.ACTIVE_STATUSES).first()
        kinds.append({
            "kind": kind, "name": KIND_NAMES.get(kind, kind), "hint": KIND_HINTS.get(kind, ""),
            "global": owner is None, "may_change": owner is not None or platform,
            "active": version_view(active) if active else None,
            "earlier": [version_view(v) for v in earlier[:EARLIER_SHOWN]], "more": max(0, len(earlier) - EARLIER_SHOWN),
            "rollback_to": target.version if target else "",
            "waiting": corrections_waiting(tenant, kind),
            "run": run_view(running, tenant) if running else None,
        })
    return kinds


def _when(moment) -> str:
    return moment.strftime("%-d %b, %H:%M:%S UTC") if moment else ""


def run_view(run: TrainingRun, tenant: Tenant) -> dict:
    """A run as the page and runs.json show it; who asked is named only for the store's own runs."""
    if run.tenant_id is None:
        who = "the platform"
    elif run.requested_by_id:
        who = display_name(run.requested_by)
    else:
        who = {TrainingRun.Trigger.SCHEDULE: "enough new corrections", TrainingRun.Trigger.DEMO: "the demo set-up"}.get(
            run.trigger, "a command")
    progress = min(1.0, max(0.0, float(run.progress or 0)))
    return {
        "id": run.pk, "kind": run.kind, "trigger": run.trigger, "status": run.status, "stage": run.stage,
        "progress": round(progress, 4), "percent": round(progress * 100), "detail": run.detail,
        "requested_by": who, "active": run.status in TrainingRun.ACTIVE_STATUSES,
        "candidate": run.candidate.version if run.candidate_id else "",
        "created_at": run.created_at.isoformat(), "created": _when(run.created_at),
        "started_at": run.started_at.isoformat() if run.started_at else None, "started": _when(run.started_at),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None, "finished": _when(run.finished_at),
    }


def runs_recent(tenant: Tenant, limit: int = RUNS_SHOWN) -> list[dict]:
    """The store's retrain runs, newest first."""
    runs = (TrainingRun.objects.filter(run_owner_filter(tenant)).select_related("requested_by", "candidate")
            .order_by("-created_at", "-pk")[:limit])
    return [run_view(run, tenant) for run in runs]

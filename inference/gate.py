"""The gate: a candidate model is promoted only if it serves at least as well as the active one.

Both are scored the way they will serve (inference.nlu_services.classifier_serving: the workers' loader, int8
where they run int8 and its threshold; one message at a time, as a worker labels) on the tenant's
frozen evaluation set and on its corrections set (chatbot.learning.evalsets). The candidate is promoted iff
it loses at most RETRAIN_TOLERANCE of the frozen set's main score and fixes more than
RETRAIN_MIN_FIXED of the corrections (an empty set asks nothing); a first model is promoted when it
could be scored. Both sets of scores and the verdict are stored on the version.

    version, verdict = gate_evaluate(candidate.pk)
"""
import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from chatbot.learning import evalsets, registry
from chatbot.models import EvalExample, ModelVersion, Tenant
from nlu import OUT_OF_SCOPE
from nlu.evaluate import classification_metrics, oos_metrics
from inference.nlu_services import classifier_serving, labels_serving, serving_precision

log = logging.getLogger(__name__)

Kind = ModelVersion.Kind
EPSILON = 1e-9  # 0.99 >= 1.0 - 0.01 in floating point
# Responders: a correction counts as fixed when the reply's ROUGE-L F1 with the agent's reply reaches this.
RESPONDER_FIXED_ROUGE = 0.5
REPLY_BATCH = 16


@dataclass
class Scores:
    """One model's figures on the two sets; `replies` (responders) are its frozen-set replies."""

    frozen: dict
    corrections: dict
    replies: list = field(default_factory=list)


@dataclass
class Verdict:
    promoted: bool
    reason: str
    decision: dict
    evaluations: dict
    serving: str = ""


def main_metric(kind: str) -> str:
    """The frozen-set figure the tolerance applies to."""
    return "rouge_l" if kind == Kind.RESPONDER else "accuracy"


# --- scoring ----------------------------------------------------------------------------


def classifier_scores(path: str, kind: str, frozen: Sequence[EvalExample], corrections: Sequence[EvalExample],
                      progress: bool = False) -> Scores:
    """accuracy, macro-F1 (intents: out-of-scope recall too) on the frozen set and the share of the
    corrections set labelled as the agents corrected it, as the workers would label them."""
    classifier = classifier_serving(path)
    try:
        predicted = [p.label for p in labels_serving(classifier, [e.text for e in frozen], progress)]
        fixed = [p.label for p in labels_serving(classifier, [e.text for e in corrections], progress)]
    finally:
        del classifier
        gc.collect()
    truth = [e.label for e in frozen]
    report = classification_metrics(truth, predicted) if frozen else {"n": 0, "accuracy": None, "macro_f1": None}
    report.pop("per_class", None)
    if kind == Kind.INTENT and frozen:
        figures = oos_metrics(truth, predicted, OUT_OF_SCOPE)
        report |= {"in_scope_accuracy": figures["in_scope_accuracy"], "oos_recall": figures["oos_recall"]}
    return Scores(frozen=report, corrections=_fixed([p == e.label for p, e in zip(fixed, corrections)]))


def _fixed(hits: list[bool]) -> dict:
    return {"n": len(hits), "fixed": round(sum(hits) / len(hits), 4) if hits else None}


def responder_scores(path: str, tenant: Tenant, frozen: Sequence[EvalExample],
                     corrections: Sequence[EvalExample]) -> Scores:
    """ROUGE-L / BLEU of the responder's replies on the frozen set and the share of corrections it now
    answers like the agent did, each reply generated as the worker generates it (its intent, the
    knowledge it retrieves, the tenant's generation settings)."""
    from inference.labelling import predict_active

    from inference.device import inference_device
    from inference.responder import GenerationSettings, Responder
    from inference.responder.inputs import VISITOR
    from inference.responder.metrics import reply_metrics, rouge_l
    from inference.responder_services import responder_grounding

    responder = Responder.load(path, device=inference_device())
    generation = GenerationSettings.from_dict(tenant.generation)

    def replies(examples: Sequence[EvalExample]) -> list:
        requests = []
        for e in examples:
            found = predict_active(Kind.INTENT, tenant.id, e.text)
            requests.append(([(VISITOR, e.text)], found[0].label if found else e.label,
                             responder_grounding(tenant, e.text)))
        out = []
        for start in range(0, len(requests), REPLY_BATCH):
            out += responder.reply_batch(requests[start:start + REPLY_BATCH], generation)
        return out

    try:
        frozen_replies, fixed_replies = replies(frozen), replies(corrections)
    finally:
        del responder
        gc.collect()
    report = reply_metrics([r.text for r in frozen_replies], [e.reply for e in frozen]) if frozen else {
        "n": 0, "rouge_l": None, "bleu": None}
    hits = [rouge_l(r.text, e.reply) >= RESPONDER_FIXED_ROUGE for r, e in zip(fixed_replies, corrections)]
    return Scores(frozen=report, corrections=_fixed(hits), replies=frozen_replies)


def version_scores(version: ModelVersion, frozen: Sequence[EvalExample],
                   corrections: Sequence[EvalExample]) -> Scores:
    if version.kind == Kind.RESPONDER:
        return responder_scores(version.path, version.tenant, frozen, corrections)
    return classifier_scores(version.path, version.kind, frozen, corrections)


# --- the decision ---------------------------------------------------------------------------


def standard_error(score: float, n: int) -> float:
    """The sampling error of a share measured on n examples."""
    return (max(0.0, score * (1 - score)) / n) ** 0.5 if n else 0.0


def gate_decide(kind: str, candidate: Scores, active: Scores | None, *, tolerance: float | None = None,
                min_fixed: float | None = None, baseline: float | None = None) -> tuple[bool, str, dict]:
    """(promote?, why, deltas): no more than `tolerance` lost on the frozen set's main figure and more
    than `min_fixed` of the corrections fixed; a first model is promoted when it could be scored.

    `baseline` is for an active version trained on the frozen set itself (before the set was drawn):
    its frozen score flatters it, so its own validation figure stands in, and the candidate may fall
    short of it by the tolerance plus two standard errors of the candidate's frozen score (another set)."""
    tolerance = settings.RETRAIN_TOLERANCE if tolerance is None else tolerance
    min_fixed = settings.RETRAIN_MIN_FIXED if min_fixed is None else min_fixed
    metric = main_metric(kind)
    score, fixed = candidate.frozen.get(metric), candidate.corrections.get("fixed")
    n_frozen, n_fixed = candidate.frozen.get("n", 0), candidate.corrections.get("n", 0)
    if active is None:
        if n_frozen and score is None:
            return False, f"the first {kind} model could not be scored on the frozen set", {}
        what = f"{metric} {score:.3f} on {n_frozen} frozen examples" if n_frozen else "no frozen set yet"
        return True, f"first {kind} model ({what})", {}
    deltas = {}
    reasons, refusals = [], []
    before = active.frozen.get(metric)
    if n_frozen and score is not None and baseline is not None:
        margin = tolerance + 2 * standard_error(score, n_frozen)
        deltas[f"frozen_{metric}_vs_validation"] = round(score - baseline, 4)
        text = (f"{metric} {score:.3f} on {n_frozen} frozen examples vs the active version's validation "
                f"{baseline:.3f}, as the active version was trained on the frozen set (allowed "
                f"{margin:.3f}: tolerance and two standard errors)")
        (reasons if score >= baseline - margin - EPSILON else refusals).append(text)
    elif n_frozen and score is not None and before is not None:
        deltas[f"frozen_{metric}"] = round(score - before, 4)
        if "macro_f1" in candidate.frozen and active.frozen.get("macro_f1") is not None:
            deltas["frozen_macro_f1"] = round(candidate.frozen["macro_f1"] - active.frozen["macro_f1"], 4)
        text = f"{metric} {score:.3f} vs {before:.3f} on {n_frozen} frozen examples (tolerance {tolerance:.3f})"
        (reasons if score >= before - tolerance - EPSILON else refusals).append(text)
    else:
        reasons.append("no frozen set to compare on")
    if n_fixed:
        before_fixed = active.corrections.get("fixed")
        if before_fixed is not None:
            deltas["corrections_fixed"] = round(fixed - before_fixed, 4)
        text = f"fixes {fixed:.0%} of {n_fixed} corrections (needs more than {min_fixed:.0%})"
        (reasons if fixed > min_fixed + EPSILON else refusals).append(text)
    else:
        reasons.append("no corrections to fix yet")
    if refusals:
        return False, "refused: " + "; ".join(refusals), deltas
    return True, "promoted: " + "; ".join(reasons), deltas


def responder_serving(tenant: Tenant, frozen: Sequence[EvalExample], replies: list) -> dict:
    """Whom a promoted responder serves: visitors where its replies beat the retrieval / intent-reply
    answer on the frozen set and write no invented values, else agents' suggestions only.

    HOOK (inference.responder_gate.responder_compare, helper H5): called as
    `responder_compare(tenant, frozen, replies) -> {"serving": "visitors"|"assist", ...figures}`; until it
    exists a responder serves agent assist only.
    """
    from inference import responder_gate

    compare = getattr(responder_gate, "responder_compare", None)
    if compare is None:
        return {"serving": ModelVersion.Serving.ASSIST, "reason": "not compared with retrieval yet"}
    return compare(tenant, list(frozen), replies)


def _responder_device() -> str:
    from inference.device import inference_device

    return inference_device().type


def _baseline(active: ModelVersion | None) -> float | None:
    """The active version's own validation figure when it may have been trained on the frozen set: a
    version the builder did not train (no data hash: `train_nlu`, an import) saw all the examples."""
    if active is None or active.data_hash or active.kind == Kind.RESPONDER:
        return None
    value = (active.metrics or {}).get(f"val_{main_metric(active.kind)}")
    return float(value) if isinstance(value, int | float) else None


def gate_evaluate(candidate_id: int, *, progress: Callable[[float, str], None] | None = None
                  ) -> tuple[ModelVersion, Verdict]:
    """Score a candidate and the active version, then promote the candidate or reject it, storing
    both sets of scores and the verdict. `progress(fraction, what)` hears of each step."""
    candidate = ModelVersion.objects.select_related("tenant").get(pk=candidate_id)
    if candidate.status != ModelVersion.Status.CANDIDATE:
        raise ValueError(f"{candidate} is {candidate.status}, not a candidate")
    kind, owner = candidate.kind, candidate.tenant
    report = progress or (lambda fraction, what: None)
    frozen = evalsets.frozen_ensure(owner, kind)
    corrections = evalsets.corrections_set(owner, kind)
    report(0.0, f"scoring the candidate on {len(frozen)} frozen and {len(corrections)} corrected examples")
    scores = version_scores(candidate, frozen, corrections)
    active_version = registry.model_version_active(kind, owner)
    active, active_error = None, ""
    if active_version is not None:
        report(0.5, f"scoring the active version {active_version.version}")
        try:
            active = version_scores(active_version, frozen, corrections)
        except Exception as exc:  # noqa: BLE001 - a broken active model is no reason to keep it
            log.exception("could not score the active %s model %s", kind, active_version.version)
            active_error = f"{type(exc).__name__}: {exc}"
    promoted, reason, deltas = gate_decide(kind, scores, active, baseline=_baseline(active_version))
    if active_error:
        promoted, reason = scores.frozen.get(main_metric(kind)) is not None or not frozen, (
            f"the active version could not be scored ({active_error}); the candidate replaces it")
    evaluations = {
        "frozen": scores.frozen | {"active": active.frozen if active else None},
        "corrections": scores.corrections | {"active": active.corrections if active else None},
    }
    decision = {
        "promoted": promoted, "reason": reason, "metric": main_metric(kind),
        "tolerance": settings.RETRAIN_TOLERANCE, "min_fixed": settings.RETRAIN_MIN_FIXED, "deltas": deltas,
        "active": active_version.version if active_version else None,
        "loaded_as": _responder_device() if kind == Kind.RESPONDER else serving_precision(),
        "decided_at": timezone.now().isoformat(),
    }
    serving = ""
    if promoted and kind == Kind.RESPONDER:
        report(0.9, "comparing the responder with the retrieval answer")
        compared = responder_serving(owner, frozen, scores.replies)
        serving = compared.get("serving") or ModelVersion.Serving.ASSIST
        evaluations["serving"] = compared
        decision["serving"] = serving
    if promoted:
        version = registry.model_version_promote(candidate.pk, decision=decision, evaluations=evaluations,
                                                 serving=serving or None)
    else:
        version = registry.model_version_reject(candidate.pk, decision=decision, evaluations=evaluations)
    log.info("gate %s %s %s: %s", "promoted" if promoted else "refused", kind, candidate.version, reason)
    report(1.0, reason)
    return version, Verdict(promoted, reason, decision, evaluations, serving)

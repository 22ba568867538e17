"""The responder's Django side: training a tenant's responder from its data, evaluating it,
and the per-process loaded responder the worker replies with.

    version = responder_train(tenant)                        # a registered, active ModelVersion
    responder = responder_active(tenant.id)                  # (Responder, ModelVersion) or None
    reply = responder.reply(history, intent, knowledge, settings=tenant.generation)
"""
import logging
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from chatbot.errors import InvalidDataFile, NoActiveModel, NotEnoughData, ServiceError, UnknownTenant
from chatbot.models import (
    Feedback,
    KnowledgeEntry,
    Message,
    ModelVersion,
    Tenant,
    TrainingExample,
)
from chatbot.learning.registry import model_version_dir, model_version_register
from chatbot.conversations.selectors import conversation_recent_turns, tenant_require

from inference import registry
from inference.device import inference_device
from inference.responder import (
    GenerationSettings,
    Responder,
    ResponderTrainConfig,
    TrainPair,
    train_responder,
)
from inference.responder.inputs import MAX_TURNS, VISITOR
from inference.responder.metrics import reply_metrics

log = logging.getLogger(__name__)

KIND = ModelVersion.Kind.RESPONDER
GROUNDING_K = 3  # as many knowledge hits as the worker retrieves per message


class ResponderError(ServiceError):
    """Something a user can fix: an unknown tenant, no data, no trained model, a bad file (each raise carries
    the code of that kind: unknown_tenant, not_enough_data, no_active_model, invalid_data_file)."""

    code = "responder_refused"


def tenant_resolve(tenant: Tenant | str) -> Tenant:
    try:
        return tenant_require(tenant)
    except UnknownTenant as exc:
        raise ResponderError(exc.detail, exc.code) from exc


def responder_grounding(tenant: Tenant, text: str, k: int = GROUNDING_K) -> list[str]:
    """The knowledge answers retrieved for a message, exactly as the worker retrieves them."""
    from inference.retrieval import knowledge_search

    return [hit.answer for hit in knowledge_search(tenant.id, text, k=k)]


def responder_pairs(tenant: Tenant) -> list[TrainPair]:
    """(message, reply) pairs of a tenant: knowledge entries, training examples with a
    response (seeded, imported, agents'), and agents' corrections of bot replies."""
    pairs = [
        TrainPair(e.question, e.answer)
        for e in KnowledgeEntry.objects.filter(tenant=tenant, is_active=True).order_by("id")
    ]
    pairs += [
        TrainPair(e.text, e.response, intent=e.intent)
        for e in TrainingExample.objects.filter(tenant=tenant).exclude(response="").order_by("id")
    ]
    corrections = (
        Feedback.objects.filter(message__conversation__tenant=tenant, message__sender=Message.Sender.BOT,
                                message__reply_to__isnull=False)
        .exclude(correction="")
        .select_related("message__reply_to")
        .order_by("id")
    )
    for feedback in corrections:
        visitor = feedback.message.reply_to
        turns = []
        if visitor.seq > 1:
            turns = conversation_recent_turns(visitor.conversation_id, visitor.seq - 1, MAX_TURNS)
        history = [(m.sender, m.text) for m in turns]
        pairs.append(TrainPair(visitor.text, feedback.correction, intent=visitor.intent, history=history))
    return [p for p in pairs if p.message.strip() and p.reply.strip()]


def responder_config(**overrides) -> ResponderTrainConfig:
    """The platform's training settings: base model, threads and time cap from the settings."""
    values = {"base_path": str(settings.RESPONDER_BASE_PATH), "threads": settings.TORCH_THREADS,
              "max_train_seconds": settings.RESPONDER_MAX_TRAIN_MINUTES * 60 or None}
    return ResponderTrainConfig(**(values | overrides))


def responder_train(tenant: Tenant | str, config: ResponderTrainConfig | None = None, activate: bool = True,
                    progress: bool = True, *, pairs: list[TrainPair] | None = None,
                    data_hash: str = "") -> ModelVersion:
    """Fine-tune a responder on the tenant's pairs (or on `pairs` a retrain built), each grounded in
    its retrieved knowledge, and register it (with its metrics) as a new version (activate=False: a
    candidate for the gate)."""
    tenant = tenant_resolve(tenant)
    config = config or responder_config()
    if not config.base_path:
        config = replace(config, base_path=str(settings.RESPONDER_BASE_PATH))
    if pairs is None:
        pairs = responder_pairs(tenant)
    pairs = [p for p in pairs if p.message.strip() and p.reply.strip()]
    if len(pairs) < 2:
        raise ResponderError(
            f"tenant {tenant.slug!r} has {len(pairs)} (message, reply) pairs; add knowledge entries or import "
            "transcripts with `import_examples --response` first", NotEnoughData.code,
        )
    pairs = [replace(p, knowledge=responder_grounding(tenant, p.message)) for p in pairs]
    version, path = model_version_dir(KIND, tenant)
    metrics = train_responder(pairs, config, path, progress=progress)
    return model_version_register(KIND, tenant, version, path, metrics, activate=activate, data_hash=data_hash)


def responder_evaluate(tenant: Tenant | str, path: str | Path, text_col: str, response_col: str,
                       progress: bool = False) -> dict:
    """The tenant's active responder on a file of (message, reference reply) rows, as served and against
    the nearest-training-message baseline, all on the same rows.

    `rougeL`: the responder's own generated replies. `retrieval_rougeL`: the stored reply of the most similar
    training message. `served_rougeL`: what the bot sends: a knowledge entry close enough to answer; else the
    responder's reply (the consensus among its generated and stored candidates) where the gate lets it serve
    the message's intent and the reply invents no value; else the intent's reply or the fallback.
    `invented_rate`: the share of generated replies that write a value from nowhere. `served_gain`: the
    served minus the baseline ROUGE-L, with a paired bootstrap 95% interval.
    """
    import numpy as np

    from nlu.data import DataFileError, rows_read

    from inference.intent_replies import training_replies
    from inference.responder.metrics import rouge_l
    from inference.responder_gate import bootstrap_interval, reply_grounded, serves_visitors, tenant_baseline_replies

    tenant = tenant_resolve(tenant)
    try:
        columns, rows = rows_read(path)
    except DataFileError as exc:
        raise ResponderError(str(exc), InvalidDataFile.code) from None
    for col in (text_col, response_col):
        if col not in columns:
            raise ResponderError(f"{path}: no column {col!r}; the file has {', '.join(map(repr, columns))}",
                                 InvalidDataFile.code)
    rows = [(r[text_col].strip(), r[response_col].strip()) for r in rows if r.get(text_col, "").strip()
            and r.get(response_col, "").strip()]
    if not rows:
        raise ResponderError(f"{path}: no rows with both {text_col!r} and {response_col!r} filled in",
                             InvalidDataFile.code)
    active = responder_active(tenant.id)
    if active is None:
        raise ResponderError(f"tenant {tenant.slug!r} has no trained responder; run `train_responder {tenant.slug}`",
                             NoActiveModel.code)
    responder, version = active
    generation = GenerationSettings.from_dict(tenant.generation)
    texts, refs = [t for t, _ in rows], [r for _, r in rows]
    intents = [_intent(tenant, text) for text in texts]
    without, knowledge, by_knowledge = tenant_baseline_replies(tenant, texts, intents)
    requests = [([(VISITOR, text)], intent, hits) for text, intent, hits in zip(texts, intents, knowledge)]
    replies = []
    for start in range(0, len(requests), 16):
        replies += responder.reply_batch(requests[start:start + 16], generation)
    nearest = [(responder.stored_replies(text, 1) or [""])[0] for text in texts]
    trained = training_replies(tenant.id)
    compared = (version.evaluations or {}).get("serving")
    serves = version.serving != ModelVersion.Serving.ASSIST
    invented = [not reply_grounded(r.generated or r.text, [t, *k, trained])
                for r, t, k in zip(replies, texts, knowledge)]
    uses = [serves and not kb and serves_visitors(compared, i) and reply_grounded(r.text, [t, *k, trained])
            for r, t, k, i, kb in zip(replies, texts, knowledge, intents, by_knowledge)]
    served = [r.text if use else w for r, use, w in zip(replies, uses, without)]
    score = lambda answers: np.array([rouge_l(a, ref) for a, ref in zip(answers, refs)])  # noqa: E731
    ours, theirs, bot = score([r.generated or r.text for r in replies]), score(nearest), score(served)
    metrics = reply_metrics([r.text for r in replies], refs)
    handed_off = sum(r.score < tenant.min_responder_score for r in replies)
    gain = bot - theirs
    metrics |= {
        "rougeL": round(float(ours.mean()), 4),
        "retrieval_rougeL": round(float(theirs.mean()), 4),
        "served_rougeL": round(float(bot.mean()), 4),
        "served_gain": {"mean": round(float(gain.mean()), 4), "ci95": bootstrap_interval(gain)},
        "invented_rate": round(sum(invented) / len(replies), 4),
        "served_by_responder": round(sum(uses) / len(replies), 4),
        "stored_share": round(sum(r.source == "stored" for r in replies) / len(replies), 4),
        "serving": version.serving or "visitors",
        "handoff_rate": round(handed_off / len(replies), 4),
        "mean_score": round(sum(r.score for r in replies) / len(replies), 4),
        "mean_latency_ms": round(sum(r.latency_ms for r in replies) / len(replies), 1),
        "version": version.version,
    }
    return metrics


def _intent(tenant: Tenant, text: str) -> str:
    """The tenant's intent model's label when one is trained (as the worker would pass it)."""
    from inference.labelling import predict_active

    found = predict_active(ModelVersion.Kind.INTENT, tenant.id, text)
    return found[0].label if found else ""


def responder_load(version: ModelVersion) -> Responder:
    return Responder.load(version.path, device=inference_device())


def responder_active(tenant_id: int) -> tuple[Responder, ModelVersion] | None:
    """The tenant's active responder, loaded once per process, and its version; None when none is trained.
    Not leased: serving code takes `responder_lease`, so a promotion never closes a responder in use."""
    return registry.active_model(KIND, tenant_id, responder_load)


def responder_lease(tenant_id: int):
    """`with responder_lease(tenant_id) as found:` the active (Responder, ModelVersion) or None, held
    (not closed by a promotion or the cache's bound) until the block ends."""
    return registry.lease(KIND, tenant_id, responder_load)

"""Django side of the NLU: importing examples, training and evaluating the registered model versions."""
from pathlib import Path

from django.conf import settings
from django.db import transaction
from tqdm.auto import tqdm

from chatbot.models import ModelVersion, SentimentExample, Tenant, TrainingExample
from chatbot.registry import (
    model_version_active,
    model_version_dir,
    model_version_register,
)
from chatbot.selectors import tenant_require

from . import OUT_OF_SCOPE, SENTIMENT_LABELS
from .data import DataFileError, examples_read
from .ensemble import ensemble_train
from .evaluate import classification_metrics, oos_metrics
from .predict import Classifier
from .train import TrainConfig

MIN_EXAMPLES_PER_INTENT = 2


def config_default(**overrides) -> TrainConfig:
    """Training settings of the platform: base encoder and threads from the settings."""
    values = {"base_encoder": str(settings.BASE_ENCODER_PATH), "threads": settings.TORCH_THREADS,
              "min_train_steps": 300, "oos_min_recall": settings.NLU_OOS_MIN_RECALL}
    return TrainConfig(**(values | overrides))


def examples_import(tenant: Tenant | str, path: str | Path, text_col: str, intent_col: str,
                    response_col: str | None = None, progress: bool = False) -> int:
    """Add a file's labelled messages to the tenant's training examples; returns how many were added."""
    tenant = tenant_require(tenant)
    extra = (response_col,) if response_col else ()
    examples = examples_read(path, text_col, intent_col, extra)
    rows = [
        TrainingExample(tenant=tenant, text=e.text, intent=e.label, source=TrainingExample.Source.IMPORT,
                        response=e.extra.get(response_col, "") if response_col else "")
        for e in tqdm(examples, desc="importing", unit="row", disable=not progress)
    ]
    with transaction.atomic():
        TrainingExample.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def intent_model_train(tenant: Tenant | str, config: TrainConfig | None = None, activate: bool = True,
                       progress: bool = True, members: int | None = None) -> ModelVersion:
    """Fine-tune a new intent model (a seed ensemble of `members`, default NLU_INTENT_MEMBERS) on the
    tenant's examples, save it as a version and register it."""
    tenant = tenant_require(tenant)
    rows = list(TrainingExample.objects.filter(tenant=tenant).exclude(intent="").values_list("text", "intent"))
    counts: dict[str, int] = {}
    for _, intent in rows:
        counts[intent] = counts.get(intent, 0) + 1
    usable = [i for i, n in counts.items() if i != OUT_OF_SCOPE and n >= MIN_EXAMPLES_PER_INTENT]
    if len(usable) < 2:
        raise ValueError(
            f"tenant {tenant.slug!r} has {len(rows)} labelled examples; training needs at least two intents "
            f"with {MIN_EXAMPLES_PER_INTENT}+ examples each (import some with import_examples)"
        )
    rows = [(t, i) for t, i in rows if i in usable or i == OUT_OF_SCOPE]
    config = config or config_default()
    config.oos = True
    version, out_dir = model_version_dir(ModelVersion.Kind.INTENT, tenant)
    metrics = ensemble_train([t for t, _ in rows], [i for _, i in rows], config, out_dir, task="intent",
                             progress=progress, members=members or settings.NLU_INTENT_MEMBERS)
    return model_version_register(ModelVersion.Kind.INTENT, tenant, version, out_dir, metrics, activate=activate)


def sentiment_examples(path: str | Path | None = None, text_col: str | None = None,
                       label_col: str | None = None) -> tuple[list[str], list[str]]:
    """Sentiment examples from a file, or else every SentimentExample row."""
    if path is None:
        rows = list(SentimentExample.objects.values_list("text", "label"))
        if not rows:
            raise ValueError("there are no sentiment examples; load some (seed_demo) or pass --data FILE")
        return [t for t, _ in rows], [y for _, y in rows]
    examples = examples_read(path, text_col or "text", label_col or "label")
    labels = [e.label.lower() for e in examples]
    unknown = sorted(set(labels) - set(SENTIMENT_LABELS))
    if unknown:
        raise DataFileError(f"{path}: unknown sentiment labels {unknown[:5]}; use {', '.join(SENTIMENT_LABELS)}")
    return [e.text for e in examples], labels


def sentiment_model_train(path: str | Path | None = None, text_col: str | None = None, label_col: str | None = None,
                          config: TrainConfig | None = None, activate: bool = True,
                          progress: bool = True, members: int | None = None) -> ModelVersion:
    """Fine-tune the global sentiment model (from a file, or from all SentimentExample rows; a seed
    ensemble of `members`, default NLU_SENTIMENT_MEMBERS) and register it."""
    texts, labels = sentiment_examples(path, text_col, label_col)
    if len(set(labels)) < 2:
        raise ValueError(f"sentiment training needs at least two labels, got {sorted(set(labels))}")
    config = config or config_default(max_length=128, lr=5e-5, epochs=3, linear_probe_init=False)
    version, out_dir = model_version_dir(ModelVersion.Kind.SENTIMENT, None)
    metrics = ensemble_train(texts, labels, config, out_dir, task="sentiment", progress=progress,
                             members=members or settings.NLU_SENTIMENT_MEMBERS)
    return model_version_register(ModelVersion.Kind.SENTIMENT, None, version, out_dir, metrics, activate=activate)


def _evaluate(kind: str, tenant: Tenant | None, path, text_col: str, label_col: str, progress: bool) -> dict:
    active = model_version_active(kind, tenant)
    if active is None:
        whose = f"tenant {tenant.slug!r}" if tenant else "the platform"
        command = f"train_nlu {tenant.slug}" if tenant else "train_sentiment"
        raise ValueError(f"{whose} has no active {kind} model; train one first ({command})")
    examples = examples_read(path, text_col, label_col)
    truth = [e.label.lower() if kind == ModelVersion.Kind.SENTIMENT else e.label for e in examples]
    classifier = Classifier.load(active.path, threads=settings.TORCH_THREADS or None)
    predicted = [p.label for p in classifier.predict([e.text for e in examples], progress=progress)]
    report = classification_metrics(truth, predicted)
    if kind == ModelVersion.Kind.INTENT:
        report |= oos_metrics(truth, predicted)
        report["unknown_labels"] = sorted(set(truth) - set(classifier.labels) - {OUT_OF_SCOPE})
    return {"model_version": active.version, **report}


def intent_model_evaluate(tenant: Tenant | str, path: str | Path, text_col: str, intent_col: str,
                          progress: bool = False) -> dict:
    """accuracy, macro_f1, per_class (and out-of-scope figures) of the tenant's active intent model on a file."""
    return _evaluate(ModelVersion.Kind.INTENT, tenant_require(tenant), path, text_col, intent_col, progress)


def sentiment_model_evaluate(path: str | Path, text_col: str, label_col: str, progress: bool = False) -> dict:
    """accuracy, macro_f1 and per_class of the active sentiment model on a file."""
    return _evaluate(ModelVersion.Kind.SENTIMENT, None, path, text_col, label_col, progress)

"""Django side of the NLU: importing examples, training and evaluating the registered model versions."""
import dataclasses
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from tqdm.auto import tqdm

from chatbot.errors import InvalidDataFile, NoActiveModel, NotEnoughData, ServiceError
from chatbot.models import ModelVersion, SentimentExample, Tenant, TrainingExample, language_code
from chatbot.learning.registry import (
    model_version_active,
    model_version_dir,
    model_version_register,
)
from chatbot.conversations.selectors import tenant_require

from inference import bases
from nlu import OUT_OF_SCOPE, SENTIMENT_LABELS
from nlu.data import DataFileError, Example, examples_read
from nlu.ensemble import ensemble_train
from nlu.evaluate import classification_metrics, oos_metrics
from nlu.loading import labeller_load
from nlu.predict import Labeller, Prediction
from nlu.train import TrainConfig, recipe

MIN_EXAMPLES_PER_INTENT = 2


def config_default(task: str = "intent", tenant: Tenant | None = None, **overrides) -> TrainConfig:
    """Training settings of the platform for `task` (intent or sentiment): the base encoder (the store's,
    inference.bases, for its intent model) and threads from the settings, the task's recipe
    (nlu.train.RECIPES), then `overrides`."""
    multilingual = tenant is not None and bases.multilingual(tenant.languages)
    if task == "sentiment":
        base = bases.sentiment_base_path()
    else:
        base = bases.multilingual_path() if multilingual else settings.BASE_ENCODER_PATH
    values = {"base_encoder": str(base), "threads": settings.TORCH_THREADS,
              "oos_min_recall": settings.NLU_OOS_MIN_RECALL}
    options = (settings.NLU_TRAIN_OPTIONS or {}).get(task, {})
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ImproperlyConfigured(f"NLU_TRAIN_OPTIONS[{task!r}] names unknown training options: {', '.join(unknown)}")
    base_recipe = bases.MULTILINGUAL_INTENT_RECIPE if multilingual and task == "intent" else {}
    return TrainConfig(**(values | recipe(task) | base_recipe | options | overrides))


def examples_of_file(path: str | Path, text_col: str, label_col: str, extra: tuple[str, ...] = ()) -> list[Example]:
    """nlu.data.examples_read, its DataFileError (a file a person can fix) re-raised as InvalidDataFile: nlu is
    a library without the platform's errors."""
    try:
        return examples_read(path, text_col, label_col, extra)
    except DataFileError as exc:
        raise InvalidDataFile(str(exc)) from exc


def examples_import(tenant: Tenant | str, path: str | Path, text_col: str, intent_col: str,
                    response_col: str | None = None, progress: bool = False, *, language: str = "",
                    language_col: str | None = None) -> int:
    """Add a file's labelled messages to the tenant's training examples; returns how many were added.

    `language` (ISO 639-1) is the language of every row, or `language_col` names a column with each row's
    ("" or none: the store's main language); examples in a language teach the multilingual intent model it
    and answer in it (TrainingExample.language)."""
    tenant = tenant_require(tenant)
    if language and language_code(language) != language:
        raise ServiceError(f"{language!r} is not a two-letter language code (e.g. es, de).", "invalid_language")
    extra = tuple(c for c in (response_col, language_col) if c)
    examples = examples_of_file(path, text_col, intent_col, extra)
    rows = []
    for e in tqdm(examples, desc="importing", unit="row", disable=not progress):
        row_language = language
        if language_col:
            written = str(e.extra.get(language_col) or "").strip()
            row_language = language_code(written)
            if written and not row_language:
                raise ServiceError(f"{written!r} in column {language_col!r} is not a language code (e.g. es, pt-BR).",
                                   "invalid_language")
        rows.append(TrainingExample(
            tenant=tenant, text=e.text, intent=e.label, source=TrainingExample.Source.IMPORT,
            response=e.extra.get(response_col, "") if response_col else "",
            language="" if row_language == tenant.main_language else row_language))
    with transaction.atomic():
        TrainingExample.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def intent_rows_usable(rows: list[tuple[str, str]], who: str) -> list[tuple[str, str]]:
    """(text, intent) rows of the intents with enough examples to learn (and the out-of-scope ones);
    a clear error when fewer than two intents are left."""
    counts: dict[str, int] = {}
    for _, intent in rows:
        counts[intent] = counts.get(intent, 0) + 1
    usable = [i for i, n in counts.items() if i != OUT_OF_SCOPE and n >= MIN_EXAMPLES_PER_INTENT]
    if len(usable) < 2:
        raise NotEnoughData(
            f"{who} has {len(rows)} labelled examples; training needs at least two intents "
            f"with {MIN_EXAMPLES_PER_INTENT}+ examples each (import some with import_examples)"
        )
    return [(t, i) for t, i in rows if i in usable or i == OUT_OF_SCOPE]


def intent_model_train(tenant: Tenant | str, config: TrainConfig | None = None, activate: bool = True,
                       progress: bool = True, members: int | None = None, *,
                       rows: list[tuple[str, str]] | None = None, data_hash: str = "") -> ModelVersion:
    """Fine-tune a new intent model (a seed ensemble of `members`, default NLU_INTENT_MEMBERS) on the
    tenant's examples (or on `rows`, (text, intent) pairs a retrain built), save it as a version and
    register it (activate=False: a candidate for the gate)."""
    tenant = tenant_require(tenant)
    if rows is None:
        rows = list(TrainingExample.objects.filter(tenant=tenant).exclude(intent="").values_list("text", "intent"))
    rows = intent_rows_usable([(t, i) for t, i in rows if i], f"tenant {tenant.slug!r}")
    config = config or config_default(tenant=tenant)
    config.oos = True
    version, out_dir = model_version_dir(ModelVersion.Kind.INTENT, tenant)
    metrics = ensemble_train([t for t, _ in rows], [i for _, i in rows], config, out_dir, task="intent",
                             progress=progress, members=members or settings.NLU_INTENT_MEMBERS)
    return model_version_register(ModelVersion.Kind.INTENT, tenant, version, out_dir, metrics, activate=activate,
                                  data_hash=data_hash)


def sentiment_examples(path: str | Path | None = None, text_col: str | None = None,
                       label_col: str | None = None) -> tuple[list[str], list[str]]:
    """Sentiment examples from a file, or else every SentimentExample row."""
    if path is None:
        rows = list(SentimentExample.objects.values_list("text", "label"))
        if not rows:
            raise NotEnoughData("there are no sentiment examples; load some (seed_demo) or pass --data FILE")
        return [t for t, _ in rows], [y for _, y in rows]
    examples = examples_of_file(path, text_col or "text", label_col or "label")
    labels = [e.label.lower() for e in examples]
    unknown = sorted(set(labels) - set(SENTIMENT_LABELS))
    if unknown:
        raise InvalidDataFile(f"{path}: unknown sentiment labels {unknown[:5]}; use {', '.join(SENTIMENT_LABELS)}")
    return [e.text for e in examples], labels


def sentiment_model_train(path: str | Path | None = None, text_col: str | None = None, label_col: str | None = None,
                          config: TrainConfig | None = None, activate: bool = True,
                          progress: bool = True, members: int | None = None, *,
                          rows: list[tuple[str, str]] | None = None, data_hash: str = "") -> ModelVersion:
    """Fine-tune the global sentiment model (from `rows` a retrain built, a file, or all SentimentExample
    rows; a seed ensemble of `members`, default NLU_SENTIMENT_MEMBERS) and register it."""
    if rows is not None:
        texts, labels = [t for t, _ in rows], [y for _, y in rows]
    else:
        texts, labels = sentiment_examples(path, text_col, label_col)
    if len(set(labels)) < 2:
        raise NotEnoughData(f"sentiment training needs at least two labels, got {sorted(set(labels))}")
    config = config or config_default("sentiment")
    version, out_dir = model_version_dir(ModelVersion.Kind.SENTIMENT, None)
    metrics = ensemble_train(texts, labels, config, out_dir, task="sentiment", progress=progress,
                             members=members or settings.NLU_SENTIMENT_MEMBERS)
    return model_version_register(ModelVersion.Kind.SENTIMENT, None, version, out_dir, metrics, activate=activate,
                                  data_hash=data_hash)


def classifier_serving(path: str | Path) -> Labeller:
    """A saved classifier loaded exactly as the workers load it (inference.labelling): same device, int8 where
    NLU_QUANTIZE serves int8, and then the int8 out-of-scope threshold."""
    from inference.device import inference_device

    return labeller_load(path, device=inference_device(), quantize=settings.NLU_QUANTIZE)


def serving_precision() -> str:
    """How the workers run the classifiers: "int8" (CPU with NLU_QUANTIZE), else the device's fp32."""
    from inference.device import inference_device

    device = inference_device()
    return "int8" if device.type == "cpu" and settings.NLU_QUANTIZE else f"fp32 ({device.type})"


def labels_serving(classifier: Labeller, texts: list[str], progress: bool = False) -> list[Prediction]:
    """Each text labelled one at a time, as a worker labels a message (dynamic int8 quantizes each
    batch's activations together, so a padded batch could answer otherwise)."""
    return [classifier.predict_one(t) for t in tqdm(texts, desc="predicting", unit="ex", disable=not progress,
                                                        leave=False)]


def _evaluate(kind: str, tenant: Tenant | None, path, text_col: str, label_col: str, progress: bool) -> dict:
    active = model_version_active(kind, tenant)
    if active is None:
        whose = f"tenant {tenant.slug!r}" if tenant else "the platform"
        command = f"train_nlu {tenant.slug}" if tenant else "train_sentiment"
        raise NoActiveModel(f"{whose} has no active {kind} model; train one first ({command})")
    examples = examples_of_file(path, text_col, label_col)
    truth = [e.label.lower() if kind == ModelVersion.Kind.SENTIMENT else e.label for e in examples]
    classifier = classifier_serving(active.path)
    texts = [e.text for e in examples]
    predicted = [p.label for p in labels_serving(classifier, texts, progress=progress)]
    report = classification_metrics(truth, predicted)
    if kind == ModelVersion.Kind.INTENT:
        report |= oos_metrics(truth, predicted)
        report["unknown_labels"] = sorted(set(truth) - set(classifier.labels) - {OUT_OF_SCOPE})
    return {"model_version": active.version, "loaded_as": serving_precision(), **report}


def intent_model_evaluate(tenant: Tenant | str, path: str | Path, text_col: str, intent_col: str,
                          progress: bool = False) -> dict:
    """accuracy, macro_f1, per_class (and out-of-scope figures) of the tenant's active intent model on a file."""
    return _evaluate(ModelVersion.Kind.INTENT, tenant_require(tenant), path, text_col, intent_col, progress)


def sentiment_model_evaluate(path: str | Path, text_col: str, label_col: str, progress: bool = False) -> dict:
    """accuracy, macro_f1 and per_class of the active sentiment model on a file."""
    return _evaluate(ModelVersion.Kind.SENTIMENT, None, path, text_col, label_col, progress)

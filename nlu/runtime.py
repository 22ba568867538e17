"""What a worker calls to label a message: the active models, loaded once per process and kept.

    labels = message_labels(tenant_id, text)  # MessageLabels(intent, intent_confidence, sentiment, ...)

Each call asks the registry which version is active (one small query) and loads a model only
when that version is new to this process, so promoting a version needs no worker restart.
"""
import threading
from dataclasses import dataclass

import torch
from django.conf import settings

from chatbot.models import ModelVersion
from chatbot.registry import model_version_active

from .predict import Classifier


@dataclass(frozen=True)
class MessageLabels:
    intent: str = ""
    intent_confidence: float | None = None
    sentiment: str = ""
    sentiment_confidence: float | None = None
    intent_version: str = ""
    sentiment_version: str = ""


def runtime_device() -> torch.device:
    wanted = getattr(settings, "INFERENCE_DEVICE", "auto")
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


class ClassifierCache:
    """Loaded classifiers by (kind, tenant id), each with the version id it was loaded from."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, int | None], tuple[int, Classifier]] = {}

    def get(self, kind: str, tenant_id: int | None = None) -> tuple[Classifier, ModelVersion] | None:
        """The active version's classifier (loading it the first time), or None when none is trained."""
        version = model_version_active(kind, tenant_id)
        if version is None:
            return None
        key = (kind, tenant_id)
        cached = self._loaded.get(key)
        if cached is None or cached[0] != version.pk:
            with self._lock:
                cached = self._loaded.get(key)
                if cached is None or cached[0] != version.pk:
                    device = runtime_device()
                    classifier = Classifier.load(
                        version.path, threads=getattr(settings, "TORCH_THREADS", 0) or None, device=device,
                        quantize=getattr(settings, "NLU_QUANTIZE", True),
                    )
                    cached = (version.pk, classifier)
                    self._loaded[key] = cached
        return cached[1], version

    def reload(self, kind: str | None = None, tenant_id: int | None = None) -> None:
        """Forget loaded models (all, or one kind/tenant) so the next get() loads afresh."""
        with self._lock:
            for key in [k for k in self._loaded if kind is None or k == (kind, tenant_id)]:
                del self._loaded[key]


classifiers = ClassifierCache()


def message_labels(tenant_id: int, text: str) -> MessageLabels:
    """Intent (tenant's active model) and sentiment (global active model); blanks where none is trained."""
    values = {}
    found = classifiers.get(ModelVersion.Kind.INTENT, tenant_id)
    if found:
        prediction = found[0].predict_one(text)
        values |= {"intent": prediction.label, "intent_confidence": prediction.confidence,
                   "intent_version": found[1].version}
    found = classifiers.get(ModelVersion.Kind.SENTIMENT, None)
    if found:
        prediction = found[0].predict_one(text)
        values |= {"sentiment": prediction.label, "sentiment_confidence": prediction.confidence,
                   "sentiment_version": found[1].version}
    return MessageLabels(**values)

"""What a worker calls to label a message: the active models, loaded once per process.

    labels = message_labels(tenant_id, text)  # MessageLabels(intent, intent_confidence, sentiment, ...)

Which version is active is cached per process (inference.registry: forgotten on a promotion's
broadcast, re-read after MODEL_POLL_SECONDS), so labelling a message asks the database nothing about
models; a model loads only when its version is new to this process, so promoting a version needs no
worker restart, and a swap closes the old model only once the messages using it are done (a lease).
NLU_QUANTIZE (default true; CPU only) runs the encoders in int8: faster, at almost the same accuracy.
"""
from contextlib import AbstractContextManager
from dataclasses import dataclass

from django.conf import settings

from chatbot.models import ModelVersion
from inference import registry
from inference.device import inference_device

from nlu.loading import labeller_load
from nlu.predict import Labeller, Prediction


@dataclass(frozen=True)
class MessageLabels:
    intent: str = ""
    intent_confidence: float | None = None
    sentiment: str = ""
    sentiment_confidence: float | None = None
    intent_version: str = ""
    sentiment_version: str = ""


def _load(version: ModelVersion) -> Labeller:
    return labeller_load(version.path, device=inference_device(), quantize=settings.NLU_QUANTIZE)


def classifier_active(kind: str, tenant_id: int | None = None) -> tuple[Labeller, ModelVersion] | None:
    """The active version's classifier (sentiment: tenant_id None), or None when none is trained."""
    return registry.active_model(kind, tenant_id, _load)


def classifier_lease(kind: str, tenant_id: int | None = None) -> AbstractContextManager:
    """`with classifier_lease(kind, tenant_id) as found:` the active (Classifier, ModelVersion) or None,
    not closed by a promotion until the block ends."""
    return registry.lease(kind, tenant_id, _load)


def predict_active(kind: str, tenant_id: int | None, text: str) -> tuple[Prediction, ModelVersion] | None:
    with classifier_lease(kind, tenant_id) as found:
        return (found[0].predict_one(text), found[1]) if found else None


def message_labels(tenant_id: int, text: str) -> MessageLabels:
    """Intent (tenant's active model) and sentiment (global active model); blanks where none is trained."""
    values = {}
    found = predict_active(ModelVersion.Kind.INTENT, tenant_id, text)
    if found:
        values |= {"intent": found[0].label, "intent_confidence": found[0].confidence,
                   "intent_version": found[1].version}
    found = predict_active(ModelVersion.Kind.SENTIMENT, None, text)
    if found:
        values |= {"sentiment": found[0].label, "sentiment_confidence": found[0].confidence,
                   "sentiment_version": found[1].version}
    return MessageLabels(**values)

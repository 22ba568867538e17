"""Load models before the first visitor waits for them."""
import logging
import time

from chatbot.models import ModelVersion, Tenant
from inference.labelling import classifier_active
from nlu import language

from inference import model_watch
from inference.corrections import correction_memory
from inference.intent_replies import intent_reply_index
from inference.responder_services import responder_active
from inference.retrieval import knowledge_index, sentence_encoder

log = logging.getLogger(__name__)

# A first prediction also pays the encoders' one-off costs (kernels, int8 weights' first pass).
_PROBE = "hello, where is my order?"


def warm_up(max_tenants: int = 50) -> None:
    """Never raises: what fails to warm loads on the first message instead (and one broken
    model does not keep the others cold)."""
    started = time.perf_counter()
    _warm("the promotion listener", model_watch.ensure_listening)  # in the process that holds the models
    if not _warm("the sentence encoder", lambda: sentence_encoder().query(_PROBE)):
        return  # every index needs it
    _warm("the sentiment classifier", _classify, ModelVersion.Kind.SENTIMENT, None)
    _warm("the language detector", language.warm)
    try:
        tenants = Tenant.objects.filter(is_active=True).order_by("-id").values_list("id", flat=True)
        tenant_ids = list(tenants[:max_tenants])
    except Exception:  # noqa: BLE001
        log.exception("warm-up failed")
        return
    for tenant_id in tenant_ids:
        _warm(f"tenant {tenant_id}", _warm_tenant, tenant_id)
    log.info("models warm in %.1f s", time.perf_counter() - started)


def _warm(what: str, fn, *args) -> bool:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001
        log.exception("warming %s failed", what)
        return False
    return True


def _warm_tenant(tenant_id: int) -> None:
    """What labelling and answering a tenant's first message load: its indexes and active models."""
    knowledge_index(tenant_id)
    intent_reply_index(tenant_id)
    correction_memory(tenant_id)
    _classify(ModelVersion.Kind.INTENT, tenant_id)
    responder_active(tenant_id)


def _classify(kind: str, tenant_id: int | None) -> None:
    found = classifier_active(kind, tenant_id)
    if found is not None:
        found[0].predict_one(_PROBE)

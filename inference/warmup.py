"""Load models before the first visitor waits for them."""
import logging
import time

from chatbot.models import Tenant

from .intent_replies import intent_reply_index
from .retrieval import knowledge_index, sentence_encoder

log = logging.getLogger(__name__)


def warm_up(max_tenants: int = 50) -> None:
    """Never raises: if warming fails, models load on the first message instead."""
    started = time.perf_counter()
    try:
        sentence_encoder()
        for tenant_id in Tenant.objects.filter(is_active=True).order_by("-id").values_list("id", flat=True)[:max_tenants]:
            knowledge_index(tenant_id)
            intent_reply_index(tenant_id)
    except Exception:  # noqa: BLE001
        log.exception("warm-up failed")
        return
    log.info("models warm in %.1f s", time.perf_counter() - started)

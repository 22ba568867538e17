"""Intent and sentiment labels of a visitor message, from the active NLU models (when trained)."""
import logging

from .policy import Labels

log = logging.getLogger(__name__)


def label(tenant_id: int, text: str) -> Labels:
    """Labels from the tenant's active intent model and the global sentiment model; empty when none is trained."""
    return Labels()

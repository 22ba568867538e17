"""The language of a visitor message as the answer path needs it: detected with the store's own
languages preferred in a close call (nlu.language); a detector that fails says nothing rather than
stopping the bot."""
import logging

from nlu.language import detect_language

log = logging.getLogger(__name__)


def message_language(tenant, text: str) -> str:
    """ISO 639-1 code of `text`, or "" when it is too short or unsure to tell."""
    try:
        return detect_language(text, prefer=tuple(tenant.languages or ())).language
    except Exception:  # noqa: BLE001 - a missing or broken detector must not leave visitors unanswered
        log.exception("language detection failed for tenant %s", tenant.id)
        return ""

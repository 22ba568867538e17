"""Connection credentials encrypted at rest (Fernet), with keys from the settings.

ACTIONS_ENCRYPTION_KEYS lists Fernet keys, newest first: the first encrypts, all decrypt, so a key can be
rotated without losing what is stored. Without it, one key is derived from SECRET_KEY.
"""
import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables


class CredentialsUnreadable(Exception):
    """The stored credentials were encrypted with a key the settings no longer hold."""


def _fernet() -> MultiFernet:
    keys = [k for k in settings.ACTIONS_ENCRYPTION_KEYS if k]
    if not keys:
        digest = hashlib.sha256(("chatbot.actions.credentials:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


@sensitive_variables("values")
def credentials_seal(values: dict) -> str:
    """`values` (e.g. {"secret": "..."}) as an encrypted token for StoreConnection.credentials."""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


@sensitive_variables()
def credentials_open(token: str) -> dict:
    """What credentials_seal sealed; {} for none."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise CredentialsUnreadable("The connection's credentials cannot be read with the keys in "
                                    "ACTIONS_ENCRYPTION_KEYS; connect the store again.") from exc

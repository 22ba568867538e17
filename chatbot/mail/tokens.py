"""The reply address of a conversation: reply+<token>@INBOUND_EMAIL_DOMAIN, the token signed with
django.core.signing so that only this server can name a conversation in it.

The token is `<conversation id>.<signature>`: the signature is 128 bits of django.core.signing's
HMAC-SHA256 of the id (salted for this use), written in lower-case hex, because a mail server may fold the
case of an address's local part and the whole local part must stay within 64 characters. Keys in
SECRET_KEY_FALLBACKS still verify, so rotating SECRET_KEY does not orphan the mails already sent.
"""
import re
from email.utils import getaddresses

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare

SALT = "chatbot.mail.reply"
PREFIX = "reply+"
_TOKEN = re.compile(r"^(\d{1,18})\.([0-9a-f]{32})$")


def _signature(conversation_id: int, key: str) -> str:
    signature = signing.Signer(key=key, salt=SALT, algorithm="sha256").signature(str(conversation_id))
    return signing.b64_decode(signature.encode()).hex()[:32]


def reply_token(conversation_id: int) -> str:
    return f"{conversation_id}.{_signature(conversation_id, settings.SECRET_KEY)}"


def conversation_of(token: str) -> int | None:
    """The conversation a token names, or None when this server did not sign it."""
    match = _TOKEN.match((token or "").strip().lower())
    if match is None:
        return None
    conversation_id = int(match.group(1))
    for key in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])):
        if constant_time_compare(_signature(conversation_id, key), match.group(2)):
            return conversation_id
    return None


def reply_address(conversation_id: int) -> str:
    """reply+<token>@INBOUND_EMAIL_DOMAIN, or "" when no inbound domain is set (mails then carry no Reply-To)."""
    domain = settings.INBOUND_EMAIL_DOMAIN
    return f"{PREFIX}{reply_token(conversation_id)}@{domain}" if domain else ""


def token_in(addresses: list[str]) -> str | None:
    """The token of the first reply address of this server's inbound domain among header values (To,
    Delivered-To...), else None."""
    domain = settings.INBOUND_EMAIL_DOMAIN
    if not domain:
        return None
    for _, address in getaddresses([a for a in addresses if a]):
        local, _, host = address.strip().rpartition("@")
        if host.lower() == domain and local.lower().startswith(PREFIX):
            return local[len(PREFIX):]
    return None

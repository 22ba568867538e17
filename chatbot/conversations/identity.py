"""Who a widget visitor is: tokens this server signs, and identities the store's server signs.

A visitor token is `v_<random>.<signature>`, signed per tenant with SECRET_KEY (django.core.signing),
so a connect can hand one out without storing anything: the Visitor row is created at her first
message. A token the server did not sign for this tenant, and that no visitor holds, is replaced.

Identity verification (as Intercom and Chatwoot offer it): the store's server computes
`hmac_sha256(identity_secret, external_id)` as hex and its page passes both to the widget
(`data-user-id`, `data-user-hash`), which sends them as `user_id` and `user_hash`. A verified
visitor is found by (tenant, external_id) on any device. The previous secret stays valid after a
rotation until it is cleared, so stores can update their servers without refusing anyone.
"""
import hashlib
import hmac
import re
import secrets

from django.core import signing
from django.db import transaction

from chatbot.errors import ServiceError
from chatbot.models import Tenant

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-:.]{1,64}$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
HASH_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
EXTERNAL_ID_MAX_LENGTH = 200


class IdentityRefused(ServiceError):
    """The connect carries no identity where the tenant requires one, or one that is not correctly signed
    (raised with code identity_required or invalid_identity)."""

    code = "identity_refused"


def _signer(tenant_id: int) -> signing.Signer:
    # "." rather than ":" between value and signature: the token travels in URLs as it is.
    return signing.Signer(sep=".", salt=f"chatbot.visitor-token.{tenant_id}", algorithm="sha256")


def visitor_token_new(tenant_id: int) -> str:
    """A fresh token (62 characters) that only this server can have made, for this tenant only."""
    return _signer(tenant_id).sign("v_" + secrets.token_urlsafe(12))


def visitor_token_signed(tenant_id: int, token: str) -> bool:
    """Whether this server signed `token` for this tenant (it may have no visitor row yet)."""
    try:
        _signer(tenant_id).unsign(token)
    except signing.BadSignature:
        return False
    return True


def clean_token(value: str | None) -> str:
    """A token-shaped query parameter, else "" (a NUL, a surrogate or garbage never reaches the database)."""
    return value if isinstance(value, str) and TOKEN_PATTERN.match(value) else ""


def clean_key(value: str | None) -> str:
    """A widget-key-shaped query parameter, else "" (answered as an unknown key)."""
    return value if isinstance(value, str) and KEY_PATTERN.match(value) else ""


def identity_hash(secret: str, external_id: str) -> str:
    """What the store's server computes: HMAC-SHA256 of the visitor's id, as lowercase hex."""
    return hmac.new(secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()


def identity_verify(tenant: Tenant, user_id: str | None, user_hash: str | None) -> str:
    """The verified external id of a connect ("" for an anonymous visitor where the tenant allows one).

    Raises IdentityRefused: `identity_required` when the tenant requires an identity and none was
    given, `invalid_identity` when one was given but is not signed with the current or previous secret.
    """
    if not user_id and not user_hash:
        if tenant.require_identity:
            raise IdentityRefused("This store requires a signed-in visitor.", "identity_required")
        return ""
    valid_shape = (
        isinstance(user_id, str) and 0 < len(user_id) <= EXTERNAL_ID_MAX_LENGTH and user_id.isprintable()
        and isinstance(user_hash, str) and HASH_PATTERN.match(user_hash)
    )
    if valid_shape:
        given = user_hash.lower()
        for secret in (tenant.identity_secret, tenant.identity_secret_previous):
            if secret and hmac.compare_digest(identity_hash(secret, user_id), given):
                return user_id
    raise IdentityRefused("The visitor's identity is not correctly signed.", "invalid_identity")


def identity_secret_rotate(tenant: Tenant | str, *, keep_previous: bool = True) -> str:
    """A new identity secret for the tenant; the old one stays valid as the previous secret unless
    `keep_previous` is False (then only the new one is accepted). Returns the new secret."""
    from chatbot.conversations import selectors

    tenant = selectors.tenant_require(tenant)
    new = secrets.token_hex(32)
    with transaction.atomic():
        row = Tenant.objects.select_for_update().get(pk=tenant.pk)
        row.identity_secret_previous = row.identity_secret if keep_previous else ""
        row.identity_secret = new
        row.save(update_fields=["identity_secret", "identity_secret_previous"])
    return new

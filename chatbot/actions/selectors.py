"""Reads of store actions for the console: a store's connection as a page may show it, and its latest calls.

A page gets a ConnectionSummary, never the StoreConnection row: the summary has no credentials field, so no
template can print them by mistake (the row is read with its credentials deferred). The one read of the
credentials here, `credentials_held`, hands them from the stored connection back to services.store_connect when
a manager reconnects without typing them again; nothing shows or logs them.
"""
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from chatbot.actions.connectors import KINDS
from chatbot.actions.credentials import CredentialsUnreadable, credentials_open
from chatbot.models import ActionCall, StoreConnection

CALLS_SHOWN = 20
KIND_NAMES = {"webhook": "Your own endpoint (webhook)", "shopify": "Shopify", "woocommerce": "WooCommerce"}


def kind_name(kind: str) -> str:
    """A kind of connection as people call it."""
    return KIND_NAMES.get(kind) or dict(StoreConnection.Kind.choices).get(kind) or kind


def kinds() -> list[tuple[str, str]]:
    """The kinds a store can connect now (connectors.KINDS, which grows as connectors are written), named."""
    return [(kind, kind_name(kind)) for kind in KINDS]


def credential_names(kind: str) -> tuple[str, ...]:
    """The credentials a kind of connection needs (its connector's `credential_names`); () for an unknown kind."""
    connector = KINDS.get(kind)
    return tuple(connector.credential_names) if connector else ()


@dataclass(frozen=True)
class ConnectionSummary:
    """What the console shows of a connection: everything but its credentials."""

    kind: str
    kind_name: str
    url: str
    host: str
    intent_actions: tuple[tuple[str, str], ...]  # (intent, action), by intent
    order_pattern: str
    timeout: float
    is_active: bool
    failures_in_a_row: int
    circuit_open_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def circuit_open(self) -> bool:
        """Whether calls are skipped now (services._circuit_open's rule): the circuit opened and has not expired."""
        return bool(self.circuit_open_until and self.circuit_open_until > timezone.now())

    @property
    def mapping_lines(self) -> str:
        """The mapping as the connect form's text: one `intent = action` per line."""
        return "\n".join(f"{intent} = {action}" for intent, action in self.intent_actions)


def connection_summary(tenant_id: int) -> ConnectionSummary | None:
    """The store's connection (active or switched off in the admin), None when it has none."""
    row = StoreConnection.objects.filter(tenant_id=tenant_id).defer("credentials").first()
    if row is None:
        return None
    mapping = row.intent_actions if isinstance(row.intent_actions, dict) else {}
    return ConnectionSummary(
        kind=row.kind, kind_name=kind_name(row.kind), url=row.url, host=(urlsplit(row.url).hostname or ""),
        intent_actions=tuple(sorted((str(i), str(a)) for i, a in mapping.items())),
        order_pattern=row.order_pattern, timeout=row.timeout, is_active=row.is_active,
        failures_in_a_row=row.failures_in_a_row, circuit_open_until=row.circuit_open_until,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def calls_recent(tenant_id: int, limit: int = CALLS_SHOWN) -> list[ActionCall]:
    """The store's latest calls, newest first: the audit the page lists (params are stored masked; the result
    an `ok` returned is not read, it may hold a customer's address)."""
    return list(ActionCall.objects.filter(tenant_id=tenant_id).defer("result", "idempotency_key")
                .order_by("-created_at", "-id")[:limit])


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of an address; a malformed port reads as None (it then matches no stored address)."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


@sensitive_variables("held")
def credentials_held(tenant_id: int, kind: str, url: str) -> dict:
    """The credentials the store's connection holds, when it is of `kind` and `url` is on the same scheme, host and
    port as its address: so a manager who changes the mapping, the timeout or the path need not type them again
    (and a webhook keeps the secret its endpoint checks). Not for another host: else a manager could send the
    stored token or secret to a server of her own and read it there. {} when there is none to keep, or the
    credentials cannot be read (the form then asks for them)."""
    row = StoreConnection.objects.filter(tenant_id=tenant_id, kind=kind).only("url", "credentials").first()
    if row is None or _origin(row.url) != _origin(url):
        return {}
    try:
        held = credentials_open(row.credentials)
    except CredentialsUnreadable:
        return {}
    return {name: held[name] for name in credential_names(kind) if held.get(name)}

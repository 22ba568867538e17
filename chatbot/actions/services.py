"""Connecting a store's order system, and calling it: every call recorded, failures counted by a circuit breaker.

`action_run` is the one way an action reaches a store. It never raises for the order system's failings: a
timeout, an error status, an answer it cannot read, a refused address or an open circuit are all one
`failed` result, recorded with the reason in a word (ActionCall.detail).
"""
import hashlib
import logging
import re
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from django.views.decorators.debug import sensitive_variables

from chatbot.actions import outbound, selectors
from chatbot.actions.connectors import KINDS, connector_class
from chatbot.actions.connectors.base import (
    ACTIONS, FAILED, NEEDS, OK, ActionRequest, ActionResult, Connector, failed,
)
from chatbot.actions.credentials import CredentialsUnreadable, credentials_open, credentials_seal
from chatbot.actions.params import params_mask
from chatbot.conversations.selectors import tenant_require
from chatbot.errors import InvalidField, NotFound
from chatbot.models import ActionCall, StoreConnection, Tenant

log = logging.getLogger(__name__)
DEFAULT_INTENT_ACTIONS = {"track_order": "order_status"}


def connection_active(tenant_id: int) -> StoreConnection | None:
    return StoreConnection.objects.filter(tenant_id=tenant_id, is_active=True).first()


def _intent_actions_clean(value: object, kind: str) -> dict:
    supported = connector_class(kind).actions
    if not isinstance(value, dict):
        raise InvalidField('Map intents to actions as {"track_order": "order_status"}.', "invalid_mapping",
                           "intent_actions")
    for intent, action in value.items():
        if not isinstance(intent, str) or not intent.strip() or len(intent) > 100:
            raise InvalidField(f"{intent!r} is not an intent name.", "invalid_mapping", "intent_actions")
        if action not in supported:
            raise InvalidField(
                f"{action!r} is not an action a {kind} connection performs; use "
                f"{', '.join(a for a in ACTIONS if a in supported)}.", "invalid_mapping", "intent_actions")
    return {k.strip(): v for k, v in value.items()}


def order_pattern_clean(pattern: object) -> str:
    """A per-store order-number pattern: a regular expression that compiles and matches no empty text."""
    if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 200:
        raise InvalidField("Give the order-number pattern as a regular expression, e.g. NW-\\d{6}.",
                           "invalid_pattern", "order_pattern")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InvalidField(f"The order-number pattern does not compile: {exc}.", "invalid_pattern",
                           "order_pattern") from exc
    if compiled.fullmatch(""):
        raise InvalidField("The order-number pattern matches an empty text.", "invalid_pattern", "order_pattern")
    return pattern


@sensitive_variables("credentials", "kept")
def store_connect(tenant: Tenant | str, kind: str, url: str, credentials: dict | None = None, *,
                  intent_actions: dict | None = None, order_pattern: str | None = None,
                  timeout: float | None = None, keep_credentials: bool = True) -> tuple[StoreConnection, dict]:
    """Connect (or reconnect) the store's order system; returns the connection and the credentials it holds.

    Credentials not given are kept from the connection it had, when that was of the same kind on the same
    scheme, host and port (`keep_credentials`; never for another host, where they could be read). A webhook
    left without a secret gets a new one (the store puts it in its endpoint to check signatures). The
    address is checked as every call's will be (https, a public address) before anything is stored."""
    tenant = tenant_require(tenant)
    if kind not in KINDS:
        raise InvalidField(f"{kind!r} is not a kind of connection; use {', '.join(KINDS)}.", "invalid_kind", "kind")
    connector = connector_class(kind)
    url = (url or "").strip()
    if len(url) > StoreConnection._meta.get_field("url").max_length:
        raise InvalidField("The address is longer than 500 characters.", "invalid_url", "url")
    try:
        _, host, port = outbound.url_check(url)
        if refusal := connector.address_refusal(host):
            raise InvalidField(refusal, "invalid_url", "url")
        outbound.resolve(host, port)
    except outbound.OutboundError as exc:
        raise InvalidField(str(exc), "invalid_url", "url") from exc
    kept = selectors.credentials_held(tenant.id, kind, url) if keep_credentials else {}
    given = {k: v for k, v in (credentials or {}).items() if k in connector.credential_names and v}
    credentials = {**kept, **given}
    if kind == StoreConnection.Kind.WEBHOOK and not credentials.get("secret"):
        credentials["secret"] = "whsec_" + secrets.token_urlsafe(32)
    missing = connector.credentials_missing(credentials)
    if missing:
        raise InvalidField(f"A {kind} connection needs {connector.credentials_wanted()}.", "missing_credentials",
                           missing[0])
    existing = StoreConnection.objects.filter(tenant=tenant).first()
    if intent_actions is None:  # what it had, else the look-up of "where is my order?"
        intent_actions = existing.intent_actions if existing and existing.intent_actions else DEFAULT_INTENT_ACTIONS
    mapping = _intent_actions_clean(intent_actions, kind)
    pattern = order_pattern_clean(order_pattern) if order_pattern is not None else (
        existing.order_pattern if existing else StoreConnection._meta.get_field("order_pattern").default)
    timeout = settings.ACTIONS_TIMEOUT if timeout is None else timeout
    if not isinstance(timeout, (int, float)) or not 0.5 <= timeout <= 30:
        raise InvalidField("The timeout is 0.5 to 30 seconds.", "invalid_timeout", "timeout")
    connection, _ = StoreConnection.objects.update_or_create(tenant=tenant, defaults={
        "kind": kind, "url": url, "credentials": credentials_seal(credentials), "intent_actions": mapping,
        "order_pattern": pattern, "timeout": float(timeout), "is_active": True,
        "failures_in_a_row": 0, "circuit_open_until": None,
    })
    log.info("store %s connected its order system (%s, %s)", tenant.slug, kind, outbound.url_check(url)[1])
    return connection, credentials


def store_disconnect(tenant: Tenant | str) -> bool:
    """Forget the store's connection and its credentials (its audit stays); False when there was none."""
    tenant = tenant_require(tenant)
    deleted, _ = StoreConnection.objects.filter(tenant=tenant).delete()
    return bool(deleted)


def connector_for(connection: StoreConnection) -> Connector:
    return connector_class(connection.kind)(connection, credentials_open(connection.credentials))


def idempotency_key(*parts: object) -> str:
    """One key per confirmed write request (store, conversation, the visitor's "yes", action, order)."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:48]


def _circuit_open(connection: StoreConnection) -> bool:
    return bool(connection.circuit_open_until and connection.circuit_open_until > timezone.now())


def _circuit_count(connection: StoreConnection, result: ActionResult) -> None:
    """A failure counts towards opening the circuit; any answer closes it."""
    rows = StoreConnection.objects.filter(pk=connection.pk)
    if result.status != FAILED:
        if connection.failures_in_a_row or connection.circuit_open_until:
            rows.update(failures_in_a_row=0, circuit_open_until=None)
            connection.failures_in_a_row, connection.circuit_open_until = 0, None
        return
    rows.update(failures_in_a_row=F("failures_in_a_row") + 1)
    connection.refresh_from_db(fields=["failures_in_a_row"])
    if connection.failures_in_a_row >= settings.ACTIONS_CIRCUIT_FAILURES:
        until = timezone.now() + timedelta(seconds=settings.ACTIONS_CIRCUIT_SECONDS)
        rows.update(circuit_open_until=until)
        connection.circuit_open_until = until
        log.warning("store %s: %s failed calls in a row; not calling its order system until %s",
                    connection.tenant_id, connection.failures_in_a_row, until.isoformat())


def action_run(connection: StoreConnection, request: ActionRequest, *, conversation_id: int | None = None,
               message_id: int | None = None, test: bool = False) -> tuple[ActionResult, float]:
    """Call `request.action` on the store's order system once; returns the result and its latency (ms).

    A write request whose idempotency key succeeded before is answered from that record, not called again.
    `test`: a manager's look-up from the console, which calls even with the circuit open (is the store back?)
    and leaves the circuit as it is (her failed tries must not stop calls for visitors)."""
    if request.idempotency_key:
        done = ActionCall.objects.filter(idempotency_key=request.idempotency_key, outcome=ActionCall.Outcome.OK).first()
        if done is not None:
            return ActionResult(OK, data=done.result), done.latency_ms or 0.0
    started = time.perf_counter()
    if _circuit_open(connection) and not test:
        result = failed("circuit open")
    else:
        try:
            result = connector_for(connection).call(request)
        except CredentialsUnreadable:
            result = failed("credentials unreadable")
        except Exception:  # noqa: BLE001 - a connector's bug must end as a failure the visitor hears of
            log.exception("store action %s of store %s raised", request.action, connection.tenant_id)
            result = failed("connector error")
        if not test:
            _circuit_count(connection, result)
    latency = round((time.perf_counter() - started) * 1000, 1)
    call_record(connection.tenant_id, request, result, latency, conversation_id=conversation_id,
                message_id=message_id)
    if result.status == FAILED:
        log.warning("store action %s of store %s failed: %s", request.action, connection.tenant_id, result.detail)
    return result, latency


def call_record(tenant_id: int, request: ActionRequest, result: ActionResult, latency_ms: float | None, *,
                conversation_id: int | None = None, message_id: int | None = None) -> None:
    """The audit row of one call (or of one refused before calling: outcome `limited`)."""
    outcome = {OK: ActionCall.Outcome.OK, NEEDS: ActionCall.Outcome.NEEDS, FAILED: ActionCall.Outcome.FAILED,
               "limited": ActionCall.Outcome.LIMITED}.get(result.status, ActionCall.Outcome.NOT_MATCHED)
    detail = result.detail or ("" if result.status in (OK, FAILED) else result.status)
    if result.status == NEEDS:
        detail = "needs " + ", ".join(result.needs)
    key = request.idempotency_key if result.status == OK and request.idempotency_key else None
    try:
        with transaction.atomic():
            ActionCall.objects.create(
                tenant_id=tenant_id, conversation_id=conversation_id, message_id=message_id, action=request.action,
                params=params_mask(request.params), outcome=outcome, detail=detail[:200], latency_ms=latency_ms,
                idempotency_key=key, result=result.data if result.status == OK else {},
            )
    except IntegrityError:  # a concurrent retry of the same write recorded it first
        pass


def connection_test(tenant: Tenant, order_number: str, email: str = "") -> tuple[ActionResult, float]:
    """A manager's "look up order ..." from the console: order_status as an unverified visitor would ask it."""
    connection = StoreConnection.objects.filter(tenant=tenant).first()
    if connection is None:
        raise NotFound("This store has no order system connected.")
    order_number = (order_number or "").strip()
    if not order_number or len(order_number) > 50:
        raise InvalidField("Give an order number to look up.", "missing_order_number", "order_number")
    request = ActionRequest("order_status", tenant.slug, None, tenant.main_language,
                            {"order_number": order_number, "email": (email or "").strip() or None},
                            {"id": None, "verified": False, "email": None})
    return action_run(connection, request, test=True)

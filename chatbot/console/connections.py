"""The managers' "Order system" page in the console: the store's connection to its order system, its latest calls,
connecting, a test look-up and disconnecting. Thin: the store comes from chatbot.conversations.access (managers
only), reads from chatbot.actions.selectors, writes and the test call from chatbot.actions.services, whose
refusals land on the forms' fields.

Credentials go one way: from the form to services.store_connect. The page never fills them in and never
shows them back, with one exception: a webhook secret the platform generated is shown once, on the response
to the connect that made it (not stored in the session, not behind a redirect, not cached by the browser).
Error reports hide the POSTed values of the connect form (sensitive_post_parameters).
"""
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from chatbot.actions import selectors, services
from chatbot.actions.connectors.base import ACTIONS, OK
from chatbot.console.forms import OrderLookupForm, StoreConnectionForm, field_of
from chatbot.console.views import _managed, _page, console_view, managed_tenant
from chatbot.errors import InvalidField, NotFound, ServiceError
from chatbot.models import ActionCall, StoreConnection, Tenant

NOT_A_MANAGER = "Only a store's managers may see and connect its order system."
# A test look-up's answer as the page words it (connectors.base's statuses).
LOOKUP_OUTCOMES = {
    "ok": "Found the order",
    "needs": "The order system asks for more",
    "not_found": "No such order",
    "forbidden": "Found, but not this customer's order",
    "failed": "Failed",
}
OUTCOME_BADGES = {
    ActionCall.Outcome.OK: "badge-resolved", ActionCall.Outcome.NEEDS: "badge-wait",
    ActionCall.Outcome.NOT_MATCHED: "badge-bot", ActionCall.Outcome.FAILED: "badge-negative",
    ActionCall.Outcome.LIMITED: "badge-waiting",
}
ORDER_FACTS = (("state", "State"), ("carrier", "Carrier"), ("tracking_number", "Tracking number"),
               ("placed_at", "Placed"), ("estimated_delivery", "Estimated delivery"))


def _page_url(tenant: Tenant) -> str:
    return f"{reverse('console:orders')}?{urlencode({'tenant': tenant.slug})}"


def _connect_form(connection: selectors.ConnectionSummary | None, data=None) -> StoreConnectionForm:
    """The connect form; empty, it shows the connection's settings (never its credentials) or the defaults."""
    credentials = {kind: selectors.credential_names(kind) for kind, _ in selectors.kinds()}
    initial = {"keep_credentials": True}
    if connection is not None:
        initial.update(kind=connection.kind, url=connection.url, intent_actions=connection.mapping_lines,
                       order_pattern=connection.order_pattern, timeout=connection.timeout)
    else:
        initial.update(order_pattern=StoreConnection._meta.get_field("order_pattern").default,
                       timeout=settings.ACTIONS_TIMEOUT,
                       intent_actions="\n".join(f"{i} = {a}" for i, a in services.DEFAULT_INTENT_ACTIONS.items()))
    return StoreConnectionForm(data, initial=initial, kinds=selectors.kinds(), credentials=credentials,
                               connected=connection is not None)


def _call_rows(tenant: Tenant) -> list[dict]:
    return [{"call": call, "badge": OUTCOME_BADGES.get(call.outcome, "badge-bot"),
             "params": ", ".join(f"{k}: {v}" for k, v in (call.params or {}).items())}
            for call in selectors.calls_recent(tenant.id)]


def _render(request: HttpRequest, tenant: Tenant, *, connect_form: StoreConnectionForm | None = None,
            lookup_form: OrderLookupForm | None = None, status: int = 200, **extra) -> HttpResponse:
    connection = selectors.connection_summary(tenant.id)
    return render(request, "console/connection.html", _page(
        request, "orders", tenant=tenant, managed=_managed(request), connection=connection,
        connect_form=connect_form or _connect_form(connection),
        lookup_form=lookup_form or OrderLookupForm(), calls=_call_rows(tenant), actions=ACTIONS, **extra,
    ), status=status)


@console_view
@require_GET
def connection_page(request: HttpRequest) -> HttpResponse:
    """The store's connection, its last calls and the forms (managers of the store only)."""
    tenant = managed_tenant(request, request.GET, NOT_A_MANAGER)
    return _render(request, tenant)


@console_view
@sensitive_post_parameters()
@sensitive_variables()
@require_POST
def connection_connect(request: HttpRequest) -> HttpResponse:
    """Connect or reconnect; a generated webhook secret is shown on this response only, else back to the page."""
    tenant = managed_tenant(request, request.POST, NOT_A_MANAGER)
    form = _connect_form(selectors.connection_summary(tenant.id), request.POST)
    if form.is_valid():
        kind, typed = form.cleaned_data["kind"], form.credentials()
        url = form.cleaned_data["url"].strip()
        kept = selectors.credentials_held(tenant.id, kind, url) if form.cleaned_data.get("keep_credentials") else {}
        try:
            connection, held = services.store_connect(
                tenant, kind, url, {**kept, **typed},
                intent_actions=form.cleaned_data["intent_actions"], order_pattern=form.cleaned_data["order_pattern"],
                timeout=form.cleaned_data["timeout"], keep_credentials=bool(form.cleaned_data.get("keep_credentials")))
        except InvalidField as exc:
            form.add_error(form.field_for(exc.field), exc.detail)
        except ServiceError as exc:
            form.add_error(None, exc.detail)
        else:
            name = selectors.kind_name(connection.kind)
            if connection.kind == StoreConnection.Kind.WEBHOOK and not typed.get("secret") and not kept.get("secret"):
                # The platform made this secret: its one showing. no-store keeps it out of the browser's cache.
                response = _render(request, tenant, new_secret=held["secret"])
                response["Cache-Control"] = "no-store"
                return response
            messages.success(request, f"Connected {tenant.name} to its order system ({name}).")
            return redirect(_page_url(tenant))
    return _render(request, tenant, connect_form=form, status=400)


@console_view
@require_POST
def connection_test_view(request: HttpRequest) -> HttpResponse:
    """Look an order up as an unverified visitor would (services.connection_test); the call is recorded, goes
    through an open circuit (is the store back?) and leaves the circuit to visitors' calls."""
    tenant = managed_tenant(request, request.POST, NOT_A_MANAGER)
    form = OrderLookupForm(request.POST)
    if form.is_valid():
        try:
            result, latency = services.connection_test(tenant, form.cleaned_data["order_number"],
                                                       form.cleaned_data["email"])
        except InvalidField as exc:
            form.add_error(field_of(form, exc.field), exc.detail)
        except NotFound as exc:  # no connection (the form is only shown with one): said on the form, not a 404
            form.add_error(None, exc.detail)
        else:
            order = result.data if result.status == OK else {}
            lookup = {
                "status": result.status, "ok": result.status == OK,
                "outcome": LOOKUP_OUTCOMES.get(result.status, result.status), "latency_ms": latency,
                "detail": result.detail, "needs": list(result.needs),
                "facts": [(label, order[key]) for key, label in ORDER_FACTS if order.get(key)],
                "tracking_url": order.get("tracking_url", ""), "items": order.get("items") or [],
                "order_number": order.get("order_number", ""),
            }
            return _render(request, tenant, lookup_form=form, lookup=lookup)
    return _render(request, tenant, lookup_form=form, status=400)


@console_view
@require_POST
def connection_disconnect(request: HttpRequest) -> HttpResponse:
    """Forget the connection and its credentials; its calls stay listed (the audit)."""
    tenant = managed_tenant(request, request.POST, NOT_A_MANAGER)
    if services.store_disconnect(tenant):
        messages.success(request, f"Disconnected {tenant.name}'s order system: the bot no longer looks orders up.")
    else:
        messages.info(request, f"{tenant.name} had no order system connected.")
    return redirect(_page_url(tenant))

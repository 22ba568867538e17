"""The demo store's own small order system: about twenty orders, answered through the store actions webhook.

It is what a store's endpoint would be (docs/store-actions.md): it checks the signature with the secret
the connection holds, matches the order's e-mail address, performs the write actions on its orders and
answers a retried write (same Idempotency-Key) with its first answer. `make run` connects the demo to it.
"""
import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot.actions.connectors.base import (
    CANCEL_ORDER, CHANGE_ADDRESS, ORDER_STATUS, RETURNABLE_STATES, START_RETURN, UNFULFILLED_STATES,
)
from chatbot.actions.connectors.webhook import signature_valid
from chatbot.actions.credentials import credentials_open
from chatbot.models import DemoOrder, StoreConnection, Tenant

DEMO_ACTIONS = {"track_order": ORDER_STATUS, "cancel_order": CANCEL_ORDER, "change_order": CHANGE_ADDRESS,
                "start_return": START_RETURN}
DEMO_ORDER_PATTERN = r"NW-\d{6}"
_SHOWN = ("state", "placed_at", "carrier", "tracking_number", "tracking_url", "estimated_delivery", "items",
          "shipping_address", "instructions", "return_number")


def demo_orders_seed(rows: list[dict]) -> int:
    """Put the demo's orders back as written (dates counted from today), whatever the visitors did to them."""
    today = timezone.now().date()
    DemoOrder.objects.all().delete()
    orders = []
    for row in rows:
        data = {k: v for k, v in row.items() if k not in ("number", "email", "placed_days_ago", "delivery_in_days")}
        data["placed_at"] = (today - timedelta(days=row["placed_days_ago"])).isoformat()
        if "delivery_in_days" in row:
            data["estimated_delivery"] = (today + timedelta(days=row["delivery_in_days"])).isoformat()
        orders.append(DemoOrder(number=row["number"], email=row["email"].lower(), data=data))
    DemoOrder.objects.bulk_create(orders)
    return len(orders)


def demo_orders_url() -> str:
    return settings.PUBLIC_URL.rstrip("/") + "/demo/orders/"


def _secret(tenant_slug: str) -> str:
    connection = StoreConnection.objects.filter(tenant__slug=tenant_slug).first()
    return credentials_open(connection.credentials).get("secret", "") if connection else ""


def _order(order: DemoOrder) -> dict:
    return {"order_number": order.number, **{k: order.data[k] for k in _SHOWN if order.data.get(k)}}


def demo_orders_answer(body: bytes, timestamp: str, signature: str, idempotency_key: str = "") -> tuple[int, dict]:
    """(HTTP status, JSON answer) of the demo order system for one webhook request."""
    try:
        request = json.loads(body)
        tenant = str(request["tenant"])
        action = request["action"]
        params = request.get("params") or {}
        visitor = request.get("visitor") or {}
    except (ValueError, KeyError, TypeError):
        return 400, {"error": "not a store action request"}
    if not Tenant.objects.filter(slug=tenant).exists() or not signature_valid(_secret(tenant), timestamp, body,
                                                                              signature):
        return 401, {"error": "bad signature"}
    with transaction.atomic():
        number = str(params.get("order_number") or "").strip().upper()
        order = DemoOrder.objects.select_for_update().filter(number=number).first()
        if order is None:
            return 200, {"status": "not_found"}
        email = str(params.get("email") or "").strip().lower()
        verified = bool(visitor.get("verified")) and str(visitor.get("email") or "").lower() == order.email
        if not email and not verified:
            return 200, {"status": "needs", "params": ["email"]}
        if not verified and email != order.email:
            return 200, {"status": "forbidden"}
        done = order.data.get("answered", {})
        if idempotency_key and idempotency_key in done:
            return 200, done[idempotency_key]
        state = order.data["state"]
        if action == CANCEL_ORDER and state in UNFULFILLED_STATES:
            order.data["state"] = "cancelled"
        elif action == CHANGE_ADDRESS and state in UNFULFILLED_STATES and params.get("address"):
            order.data["shipping_address"] = str(params["address"])[:300]
        elif action == START_RETURN and state in RETURNABLE_STATES:
            order.data["return_number"] = "R-" + order.number.split("-")[-1]
            order.data["instructions"] = ("Pack the items, write the return number on the parcel and drop it at any "
                                          "DHL point: the prepaid label is on its way to your e-mail.")
        elif action != ORDER_STATUS and action not in (CANCEL_ORDER, CHANGE_ADDRESS, START_RETURN):
            return 400, {"error": f"unknown action {action!r}"}
        answer = {"status": "ok", "data": _order(order)}
        if idempotency_key:
            order.data["answered"] = {**done, idempotency_key: answer}
        order.save()
        return 200, answer

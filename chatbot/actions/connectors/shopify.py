"""A Shopify store's orders, through Shopify's REST Admin API, so a Shopify store connects with an access token
instead of writing a webhook of its own (docs/connectors.md).

`connection.url` is the shop's own address (https://SHOP.myshopify.com); the token is a custom app's Admin API
access token (scopes read_orders, write_orders), sent as X-Shopify-Access-Token. Orders are found by their
name ("#1001"); the state is read from the order's cancellation, payment and fulfillments (order_state).
Shopify's REST API has no returns, so start_return is not offered.
"""
import threading
import time
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from django.conf import settings

from chatbot.actions import outbound
from chatbot.actions.connectors.base import CANCEL_ORDER, CHANGE_ADDRESS, ORDER_STATUS, ActionRequest, json_body
from chatbot.actions.connectors.shop_platform import (
    USER_AGENT, ShopConnector, ShopFailure, ShopOrder, address_line, emails_of,
)

# Dev Dashboard apps' access tokens, by (connection, address, client id): (token, expires at, Unix time).
_app_tokens: dict[tuple, tuple[str, float]] = {}
_app_tokens_lock = threading.Lock()

# A supported stable version: Shopify serves each at least 12 months, then answers with a newer one instead.
API_VERSION = "2026-10"
# Only what the answer needs: less of the customer's data crosses, and a big order stays within the size limit.
ORDER_FIELDS = ("id,name,email,contact_email,customer,created_at,cancelled_at,financial_status,fulfillment_status,"
                "fulfillments,line_items,shipping_address")
# Payment states of an unfulfilled order that mean it waits for the money; any other is being prepared.
UNPAID = frozenset({"pending", "voided", "expired"})
# The latest fulfillment's shipment_status (set by the carrier's tracking) of a fulfilled order; any other
# (label_printed, label_purchased, confirmed, failure, none yet) reads as shipped.
SHIPMENT_STATES = {
    "in_transit": "in_transit", "attempted_delivery": "in_transit", "ready_for_pickup": "in_transit",
    "out_for_delivery": "out_for_delivery", "delivered": "delivered",
}
# Fulfillments that never went anywhere.
DEAD_FULFILLMENTS = frozenset({"cancelled", "error", "failure"})
# What an order's shipping address is written with (latitude and longitude would place the old address).
ADDRESS_FIELDS = ("first_name", "last_name", "company", "address1", "address2", "city", "province", "province_code",
                  "zip", "country", "country_code", "phone")
GID_CUSTOMER = "gid://shopify/Customer/"


def order_name(number: str) -> str:
    """The order's name as Shopify writes it: "1001" and "#1001" are both "#1001"; a custom prefix stays."""
    number = number.strip()
    return f"#{number}" if number.isdigit() else number


def name_normal(name: str) -> str:
    return name.strip().lstrip("#").upper()


def _moment(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min


def fulfillment_latest(order: dict) -> dict | None:
    """The order's newest fulfillment that is on its way or done (not cancelled or failed)."""
    live = [f for f in order.get("fulfillments") or []
            if isinstance(f, dict) and f.get("status") not in DEAD_FULFILLMENTS]
    if not live:
        return None
    if all(f.get("created_at") for f in live):
        return max(live, key=lambda f: _moment(f["created_at"]))
    return live[-1]


def order_state(order: dict) -> str:
    """The platform's state of a Shopify order (docs/connectors.md has the table)."""
    if order.get("cancelled_at"):
        return "cancelled"
    financial = order.get("financial_status")
    if financial == "refunded":
        return "refunded"
    fulfillment = order.get("fulfillment_status")
    if fulfillment in (None, "unfulfilled", "restocked"):
        return "pending" if financial in UNPAID else "processing"
    if fulfillment == "partial":
        return "shipped"
    if fulfillment == "fulfilled":
        latest = fulfillment_latest(order) or {}
        return SHIPMENT_STATES.get(latest.get("shipment_status"), "shipped")
    raise ShopFailure(f"unknown fulfillment status {str(fulfillment)[:40]}")


def _first(one: object, many: object) -> object:
    if one:
        return one
    return many[0] if isinstance(many, list) and many else None


def order_read(order: dict) -> ShopOrder:
    """A Shopify order (REST Admin API) as the platform reads it."""
    if order.get("id") is None:
        raise ShopFailure("bad answer: an order without id")
    state = order_state(order)
    latest = fulfillment_latest(order)
    items = [{"name": i.get("name") or i.get("title"), "quantity": i.get("quantity")}
             for i in order.get("line_items") or [] if isinstance(i, dict)]
    shipping = order.get("shipping_address") if isinstance(order.get("shipping_address"), dict) else {}
    data = {
        "order_number": order.get("name"), "state": state, "placed_at": order.get("created_at"), "items": items,
        "shipping_address": address_line(*(shipping.get(k) for k in
                                           ("address1", "address2", "city", "province", "zip", "country"))),
    }
    if latest is not None:
        data["carrier"] = latest.get("tracking_company")
        data["tracking_number"] = _first(latest.get("tracking_number"), latest.get("tracking_numbers"))
        data["tracking_url"] = _first(latest.get("tracking_url"), latest.get("tracking_urls"))
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    customer_ids = frozenset()
    if customer.get("id") not in (None, "", 0):
        customer_ids = frozenset({str(customer["id"]), f"{GID_CUSTOMER}{customer['id']}"})
    # An order sent to a fulfillment service that has not shipped it yet still reads as unfulfilled.
    in_progress = state in ("pending", "processing") and latest is not None
    return ShopOrder(
        id=str(order["id"]), data=data, raw=order, writable=not in_progress, customer_ids=customer_ids,
        emails=emails_of(order.get("email"), order.get("contact_email"), customer.get("email")),
    )


class ShopifyConnector(ShopConnector):
    kind = "shopify"
    actions = frozenset({ORDER_STATUS, CANCEL_ORDER, CHANGE_ADDRESS})
    # An app made in the store's admin has a lasting token; one made in the Dev Dashboard (the only kind since
    # 2026) has a client id and secret, exchanged for a token that lasts about a day (app_token).
    credential_names = ("token", "client_id", "client_secret")
    credential_sets = (("token",), ("client_id", "client_secret"))

    @classmethod
    def address_refusal(cls, host: str) -> str:
        """The Admin API answers on the shop's myshopify.com address only: on its own domain it redirects there,
        and a redirect to another host is refused (chatbot.actions.outbound)."""
        if host.endswith(".myshopify.com") or settings.ACTIONS_ALLOW_PRIVATE_HOSTS:
            return ""
        return f"Give the shop's myshopify.com address (https://SHOP.myshopify.com), not {host}."

    def api(self, path: str, query: dict | None = None) -> str:
        """An Admin API address: always at the shop's root, whatever path the store gave with it."""
        parts = urlsplit(self.connection.url)
        return f"{parts.scheme}://{parts.netloc}/admin/api/{API_VERSION}/{path}" + (
            f"?{urlencode(query)}" if query else "")

    def auth_headers(self) -> dict:
        return {"X-Shopify-Access-Token": self.credentials.get("token") or self.app_token()}

    def app_token(self) -> str:
        """A Dev Dashboard app's access token (the client credentials grant), kept in this process until a minute
        before it expires; ShopFailure when Shopify gives none."""
        key = (self.connection.pk, self.connection.url, self.credentials.get("client_id", ""))
        with _app_tokens_lock:
            token, expires = _app_tokens.get(key, ("", 0.0))
        if token and expires - 60 > time.time():
            return token
        parts = urlsplit(self.connection.url)
        body = urlencode({"grant_type": "client_credentials", "client_id": self.credentials.get("client_id", ""),
                          "client_secret": self.credentials.get("client_secret", "")}).encode()
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ShopFailure("timeout")
        try:
            response = self.http("POST", f"{parts.scheme}://{parts.netloc}/admin/oauth/access_token", body=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Accept": "application/json", "User-Agent": USER_AGENT}, timeout=left)
        except outbound.OutboundError as exc:
            raise ShopFailure(exc.kind) from exc
        answer = json_body(response) if response.status == 200 else None
        token = answer.get("access_token") if answer else None
        if not isinstance(token, str) or not token:
            raise ShopFailure(f"no access token (status {response.status})")
        lifetime = answer.get("expires_in")
        lifetime = lifetime if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) else 3600
        with _app_tokens_lock:
            _app_tokens[key] = (token, time.time() + lifetime)
        return token

    def order_find(self, request: ActionRequest) -> ShopOrder | None:
        name = order_name(request.order_number)
        query = {"name": name, "status": "any", "fields": ORDER_FIELDS}
        answer = self.request_json("GET", self.api("orders.json", query))
        orders = answer.get("orders")
        if not isinstance(orders, list):
            raise ShopFailure("bad answer: no orders")
        # The name filter is not an exact match: take the order of exactly this name.
        for order in orders:
            if isinstance(order, dict) and name_normal(str(order.get("name") or "")) == name_normal(name):
                return order_read(order)
        return None

    def order_cancel(self, order: ShopOrder) -> ShopOrder:
        # Shopify e-mails the customer its cancellation notice; the payment is not refunded (docs/connectors.md).
        answer = self.request_json("POST", self.api(f"orders/{order.id}/cancel.json"),
                                   {"reason": "customer", "email": True})
        return self._answered(order, answer)

    def address_change(self, order: ShopOrder, address: str) -> ShopOrder:
        current = order.raw.get("shipping_address")
        if not isinstance(current, dict):
            raise ShopFailure("no shipping address to change")
        shipping = {k: current[k] for k in ADDRESS_FIELDS if current.get(k) not in (None, "")}
        shipping["address1"] = address
        answer = self.request_json("PUT", self.api(f"orders/{order.id}.json"),
                                   {"order": {"id": order.raw["id"], "shipping_address": shipping}})
        if "order" not in answer:  # an answer without the order: the address as it was sent
            return order_read({**order.raw, "shipping_address": {**current, **shipping}})
        return self._answered(order, answer)

    def _answered(self, order: ShopOrder, answer: dict) -> ShopOrder:
        """The order as a write's answer shows it (what it leaves out kept from before)."""
        updated = answer.get("order")
        if isinstance(updated, dict) and str(updated.get("id")) == order.id:
            return order_read({**order.raw, **updated})
        return order

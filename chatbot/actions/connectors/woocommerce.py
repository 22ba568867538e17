"""A WooCommerce store's orders, through the WooCommerce REST API (v3), so a WooCommerce store connects with a
pair of REST API keys instead of writing a webhook of its own (docs/connectors.md).

`connection.url` is the site's address (https://shop.example, or where WordPress lives under it); the consumer
key and secret go by HTTP Basic auth, over https only. The order number is the order's id. Tracking is read
from the Shipment Tracking extension's order meta when the store has it; WooCommerce itself keeps none, nor
does it know where a parcel is, so a completed order reads as shipped, never as delivered.
"""
import base64
import re

from chatbot.actions import outbound
from chatbot.actions.connectors.base import (
    CANCEL_ORDER, CHANGE_ADDRESS, ORDER_STATUS, STATES, ActionRequest, json_body,
)
from chatbot.actions.connectors.shop_platform import (
    ShopConnector, ShopFailure, ShopOrder, address_line, emails_of,
)

API_PATH = "/wp-json/wc/v3"
# WooCommerce's order statuses as the platform's states (docs/connectors.md has the table and the why).
STATUS_STATES = {
    "pending": "pending",  # pending payment
    "on-hold": "pending",  # awaiting a payment to be confirmed (a bank transfer, a cheque)
    "processing": "processing",  # paid, being prepared
    "completed": "shipped",  # the store marked it done: sent, or for a download, delivered
    "cancelled": "cancelled",
    "refunded": "refunded",
    "failed": "cancelled",  # the payment failed: nothing will be sent unless the customer pays again
}
# Statuses of orders no customer placed: a checkout never finished, an order in the bin.
NOT_ORDERS = frozenset({"checkout-draft", "draft", "auto-draft", "trash"})
TRACKING_META = "_wc_shipment_tracking_items"
_TRAILING_DIGITS = re.compile(r"(\d+)\s*$")


def order_id(number: str) -> str | None:
    """The order id in what the visitor wrote: "1234", "#1234" and "WC-1234" are order 1234; None without one."""
    found = _TRAILING_DIGITS.search(number.strip())
    return str(int(found.group(1))) if found and int(found.group(1)) > 0 else None


def tracking_latest(order: dict) -> dict | None:
    """The newest Shipment Tracking item of the order (by its shipping date), None when it has none."""
    for meta in order.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == TRACKING_META and isinstance(meta.get("value"), list):
            items = [i for i in meta["value"] if isinstance(i, dict) and i.get("tracking_number")]
            if items:
                return max(enumerate(items), key=lambda pair: (_shipped_at(pair[1]), pair[0]))[1]
    return None


def _shipped_at(item: dict) -> int:
    try:
        return int(item.get("date_shipped") or 0)
    except (TypeError, ValueError):
        return 0


def order_state(status: str, tracked: bool) -> str:
    """The platform's state of a WooCommerce order; a status of a plugin's named like one of the platform's
    states ("shipped", "delivered") is that state."""
    if status == "processing" and tracked:
        return "shipped"  # a parcel with a tracking number is out of the warehouse's hands
    if status in STATUS_STATES:
        return STATUS_STATES[status]
    if status in STATES:
        return status
    raise ShopFailure(f"unknown status {status[:40]}")


def order_read(order: dict, number: str) -> ShopOrder:
    """A WooCommerce order (REST API v3) as the platform reads it; `number` is the one the visitor gave."""
    tracking = tracking_latest(order)
    state = order_state(str(order.get("status") or ""), tracking is not None)
    shipping = order.get("shipping") if isinstance(order.get("shipping"), dict) else {}
    billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
    woo_number = str(order.get("number") or "")
    same = woo_number.lstrip("#").upper() == number.strip().lstrip("#").upper()
    data = {
        "order_number": woo_number if same else number.strip(),
        "state": state, "placed_at": order.get("date_created"),
        "items": [{"name": i.get("name"), "quantity": i.get("quantity")}
                  for i in order.get("line_items") or [] if isinstance(i, dict)],
        "shipping_address": address_line(*(shipping.get(k) for k in
                                           ("address_1", "address_2", "city", "state", "postcode", "country"))),
    }
    if tracking is not None:
        data["carrier"] = tracking.get("custom_tracking_provider") or tracking.get("tracking_provider")
        data["tracking_number"] = tracking.get("tracking_number")
        data["tracking_url"] = tracking.get("custom_tracking_link") or tracking.get("tracking_link")
    customer = order.get("customer_id")
    return ShopOrder(
        id=str(order["id"]), data=data, raw=order, emails=emails_of(billing.get("email")),
        # Guests' orders have customer 0: no visitor's id is theirs.
        customer_ids=frozenset({str(customer)}) if isinstance(customer, int) and customer > 0 else frozenset(),
    )


class WooCommerceConnector(ShopConnector):
    kind = "woocommerce"
    actions = frozenset({ORDER_STATUS, CANCEL_ORDER, CHANGE_ADDRESS})
    credential_names = ("consumer_key", "consumer_secret")

    def api(self, path: str) -> str:
        return f"{self.connection.url.rstrip('/')}{API_PATH}/{path}"

    def auth_headers(self) -> dict:
        pair = f"{self.credentials.get('consumer_key', '')}:{self.credentials.get('consumer_secret', '')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    def missing(self, response: outbound.Response) -> bool:
        # WordPress answers 404 rest_no_route where there is no WooCommerce API at all: that is a failure.
        if response.status != 404:
            return False
        answer = json_body(response)
        return not (answer and answer.get("code") == "rest_no_route")

    def order_find(self, request: ActionRequest) -> ShopOrder | None:
        wanted = order_id(request.order_number)
        if wanted is None:
            return None
        order = self.request_json("GET", self.api(f"orders/{wanted}"), lookup=True)
        if order is None or str(order.get("id")) != wanted or str(order.get("status")) in NOT_ORDERS:
            return None
        # A store that numbers its orders otherwise than by id (a sequential-numbers plugin): this order is
        # not the one the visitor named.
        number = order_id(str(order.get("number") or wanted))
        if number != wanted:
            return None
        return order_read(order, request.order_number)

    def order_cancel(self, order: ShopOrder) -> ShopOrder:
        return self._written(order, {"status": "cancelled"})

    def address_change(self, order: ShopOrder, address: str) -> ShopOrder:
        current = order.raw.get("shipping") if isinstance(order.raw.get("shipping"), dict) else {}
        return self._written(order, {"shipping": {**current, "address_1": address}})

    def _written(self, order: ShopOrder, change: dict) -> ShopOrder:
        """PUT `change` to the order; the order as the answer shows it."""
        answer = self.request_json("PUT", self.api(f"orders/{order.id}"), change)
        if str(answer.get("id")) != order.id:
            raise ShopFailure("bad answer: another order")
        return order_read(answer, order.data["order_number"])

"""What the connectors to hosted shop platforms (Shopify, WooCommerce) share: one flow for every action, and the
identity check that the platform makes for them.

A store's own webhook decides for itself whose order it is. A shop platform's API answers any order to whoever
holds the store's key, so for these connectors the platform checks it: an order's data goes back only to a
visitor who gave the order's e-mail address, or to a verified visitor whose id or e-mail is the order's. A
visitor who gave neither is asked for the e-mail before anything is called.

Every action is: find the order, check that it is the visitor's, then (cancel_order, change_address) write to it
while it is still unfulfilled. The dialogue looks the order up and refuses a write that is too late before it
asks for consent, so a write that finds the order past that point means it moved on between the look-up and
the visitor's yes: that is a failure (`too late: shipped`), which hands the conversation to a person with
the reason and can never read as done. Cancelling an order already cancelled answers it as cancelled (a
retry of a cancel that went through). All the requests of one action share one deadline, the connection's
timeout.
"""
import json
import time
from dataclasses import dataclass, field, replace

from chatbot.actions import outbound
from chatbot.actions.connectors.base import (
    CANCEL_ORDER, CHANGE_ADDRESS, FORBIDDEN, NEEDS, NOT_FOUND, OK, UNFULFILLED_STATES, ActionRequest, ActionResult,
    Connector, failed, json_body, order_clean,
)

USER_AGENT = "chatbot-store-actions/1"
WRITE_ACTIONS = (CANCEL_ORDER, CHANGE_ADDRESS)


class ShopFailure(Exception):
    """The platform gave no answer this connector can use; `detail` says why in a word or two."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ShopOrder:
    """One order as a platform holds it, read into what the platform's checks and answers need."""

    id: str  # the platform's own id of the order, for the write requests
    data: dict  # the order as order_clean reads it (order_number, state, tracking, items, ...)
    raw: dict  # the platform's own order, for a write that sends part of it back
    emails: frozenset = field(default_factory=frozenset)  # the order's e-mail addresses, casefolded
    customer_ids: frozenset = field(default_factory=frozenset)  # the ids a verified visitor may hold for it
    # False where the platform has started on an order its state still calls unfulfilled (Shopify: a
    # fulfillment in progress at a fulfillment service): a person decides, the bot does not write.
    writable: bool = True

    def with_state(self, state: str) -> "ShopOrder":
        return replace(self, data={**self.data, "state": state})


def email_normal(value: object) -> str:
    return value.strip().casefold() if isinstance(value, str) else ""


def emails_of(*values: object) -> frozenset:
    return frozenset(e for e in map(email_normal, values) if "@" in e)


def order_owned(order: ShopOrder, request: ActionRequest) -> bool:
    """Whether the visitor may see and change `order`: the e-mail given is the order's, or the visitor is
    verified (the store signed the id) and the verified id or e-mail is the order's."""
    given = email_normal(request.params.get("email"))
    if given and given in order.emails:
        return True
    visitor = request.visitor or {}
    if not visitor.get("verified"):
        return False
    visitor_id = str(visitor.get("id") or "").strip()
    visitor_email = email_normal(visitor.get("email"))
    return (bool(visitor_id) and visitor_id in order.customer_ids) or (
        bool(visitor_email) and visitor_email in order.emails)


def params_missing(request: ActionRequest) -> list[str]:
    """What must be asked before anything is called: the order number, the e-mail (unless the visitor is
    verified) and, to change the address, the new one."""
    missing = []
    if not request.order_number.strip():
        missing.append("order_number")
    if not email_normal(request.params.get("email")) and not (request.visitor or {}).get("verified"):
        missing.append("email")
    if request.action == CHANGE_ADDRESS and not str(request.params.get("address") or "").strip():
        missing.append("address")
    return missing


def address_line(*parts: object) -> str | None:
    """An address's parts as the one line the platform shows ("12 Rue X, Apt 4, Paris, 75002, FR")."""
    line = ", ".join(str(p).strip() for p in parts if isinstance(p, (str, int)) and str(p).strip())
    return line or None


class ShopConnector(Connector):
    """The flow every shop platform connector follows; a subclass finds, cancels and changes its orders."""

    deadline = 0.0  # time.monotonic() by which the action's requests must be answered, set per call

    def call(self, request: ActionRequest) -> ActionResult:
        if request.action not in self.actions:
            return failed(f"{request.action} not supported by {self.kind}")
        if missing := params_missing(request):
            return ActionResult(NEEDS, needs=missing)
        self.deadline = time.monotonic() + self.connection.timeout
        try:
            order = self.order_find(request)
            if order is None:
                return ActionResult(NOT_FOUND)
            if not order_owned(order, request):
                return ActionResult(FORBIDDEN)
            if request.action in WRITE_ACTIONS:
                order = self.order_write(order, request)
        except ShopFailure as exc:
            return failed(exc.detail)
        data = order_clean(order.data, request.order_number)
        if data is None:
            return failed("bad answer: no order state")
        return ActionResult(OK, data=data)

    def order_write(self, order: ShopOrder, request: ActionRequest) -> ShopOrder:
        """Cancel the order or change its address while it is unfulfilled; ShopFailure when it is too late."""
        state = order.data.get("state")
        if request.action == CANCEL_ORDER and state == "cancelled":
            return order
        if state not in UNFULFILLED_STATES:
            raise ShopFailure(f"too late: {state}")
        if not order.writable:
            raise ShopFailure("fulfillment in progress")
        if request.action == CANCEL_ORDER:
            # A 2xx answer to the cancel request is the platform's word that it is cancelled.
            return self.order_cancel(order).with_state("cancelled")
        return self.address_change(order, " ".join(str(request.params["address"]).split()))

    def order_find(self, request: ActionRequest) -> ShopOrder | None:
        """The order the visitor named, None when the store has none by that number (ShopFailure: no answer)."""
        raise NotImplementedError

    def order_cancel(self, order: ShopOrder) -> ShopOrder:
        raise NotImplementedError

    def address_change(self, order: ShopOrder, address: str) -> ShopOrder:
        raise NotImplementedError

    def auth_headers(self) -> dict:
        raise NotImplementedError

    def missing(self, response: outbound.Response) -> bool:
        """Whether an error answer to a look-up means "no such order" (not a failure)."""
        return response.status == 404

    def request_json(self, method: str, url: str, body: dict | None = None, *, lookup: bool = False) -> dict | None:
        """One API request within the action's deadline: its JSON object, or None for a look-up the platform
        answers with no such order; ShopFailure for no answer, an error status or an answer not JSON."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ShopFailure("timeout")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self.auth_headers()}
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self.http(method, url, headers=headers, body=payload, timeout=left)
        except outbound.OutboundError as exc:
            raise ShopFailure(exc.kind) from exc
        if lookup and self.missing(response):
            return None
        if not 200 <= response.status < 300:
            raise ShopFailure(f"status {response.status}")
        answer = json_body(response)
        if answer is None:
            raise ShopFailure("bad json")
        return answer

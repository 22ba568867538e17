"""The Shopify and WooCommerce connectors against real local HTTP servers that answer like the platforms' APIs:
the requests they make (paths, methods, auth, bodies), the state mapping, the platform's identity check,
cancel and address changes and their refusals, and every failure ending as a `failed` result within the
connection's timeout, with no credential in the audit rows or the logs."""
import base64
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from chatbot.actions import services
from chatbot.actions.connectors import KINDS
from chatbot.actions.connectors.base import ActionRequest
from chatbot.actions.connectors.shopify import API_VERSION, ShopifyConnector
from chatbot.actions.connectors.woocommerce import WooCommerceConnector
from chatbot.errors import InvalidField
from chatbot.models import ActionCall
from tests.factories import TenantFactory

SHOPIFY_TOKEN = "shpat_0123456789abcdef0123456789abcdef"
APP_CLIENT_ID, APP_CLIENT_SECRET = "a1b2c3client", "dev-dashboard-secret"
WOO_KEY = "ck_4e1f0c2b9d8a7e6f5d4c3b2a1f0e9d8c7b6a5f40"
WOO_SECRET = "cs_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a09"
SECRETS = (SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET, base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode())
ADMIN = f"/admin/api/{API_VERSION}"
WOO_API = "/wp-json/wc/v3"
BOB = "bob.norman@mail.example.com"
JANE = "jane.doe@example.com"
FULFILLMENT_IDS = itertools.count(255858046)
SENT = "2025-01-11T10:00:00-05:00"


# ---- fake platforms ------------------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: object


class FakeApi(BaseHTTPRequestHandler):
    """One request to a fake platform: recorded, then answered by the platform's route or by its fault."""

    shop = None  # the FakeShop, set per server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def do_PUT(self):
        self.answer("PUT")

    def answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        body = (dict(parse_qsl(raw.decode())) if form else json.loads(raw)) if raw else None
        seen = Seen(method, parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()},
                    body)
        self.shop.seen.append(seen)
        fault = self.shop.faults.get(method, self.shop.faults.get("*"))
        if fault == "hang":
            self.shop.release.wait(10)
            return
        if fault == "slow":
            self.shop.release.wait(0.8)
            fault = None
        if fault == "500":
            status, payload = 500, b'{"errors":"Internal Server Error"}'
        elif fault == "bad json":
            status, payload = 200, b"<html><body>Down for maintenance</body></html>"
        else:
            status, answer = self.shop.route(seen)
            payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeShop:
    """A platform's API on 127.0.0.1: its orders by id, the requests it got, and a fault to answer with
    ({"*": "500"}, {"POST": "hang"}, {"GET": "slow"}: 0.8 s late, ...)."""

    def __init__(self):
        self.app_tokens: list[str] = []
        self.orders: dict[int, dict] = {}
        self.seen: list[Seen] = []
        self.faults: dict[str, str] = {}
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (FakeApi,), {"shop": self}))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, order: dict) -> dict:
        self.orders[order["id"]] = order
        return order

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method != "GET"]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def route(self, seen: Seen) -> tuple[int, object]:
        raise NotImplementedError


class FakeShopify(FakeShop):
    """The REST Admin API's order endpoints, as documented for 2025-01, and the client credentials grant of Dev
    Dashboard apps (tokens that last `app_token_seconds`)."""

    app_token_seconds = 86399

    def route(self, seen):
        if seen.method == "POST" and seen.path == "/admin/oauth/access_token":
            body = seen.body or {}
            if (body.get("grant_type"), body.get("client_id"), body.get("client_secret")) != (
                    "client_credentials", APP_CLIENT_ID, APP_CLIENT_SECRET):
                return 400, {"error": "invalid_client"}
            token = f"shpat_app_{len(self.app_tokens) + 1}"
            self.app_tokens.append(token)
            return 200, {"access_token": token, "scope": "read_orders,write_orders",
                         "expires_in": self.app_token_seconds}
        if seen.headers.get("x-shopify-access-token") not in (SHOPIFY_TOKEN, *self.app_tokens):
            return 401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        if seen.method == "GET" and seen.path == f"{ADMIN}/orders.json":
            assert seen.query.get("status") == "any"
            # Loose, as the name filter can be: "#1001" also finds "#10010".
            found = [o for o in self.orders.values() if o["name"].startswith(seen.query.get("name", ""))]
            fields = seen.query.get("fields")
            if fields:
                found = [{k: v for k, v in o.items() if k in fields.split(",")} for o in found]
            return 200, {"orders": found}
        parts = seen.path.removeprefix(f"{ADMIN}/orders/").split("/")
        order_id = parts[0].removesuffix(".json")
        order = self.orders.get(int(order_id)) if order_id.isdigit() else None
        if order is None:
            return 404, {"errors": "Not Found"}
        if seen.method == "POST" and parts[1:] == ["cancel.json"]:
            if order["fulfillment_status"] == "fulfilled":
                return 422, {"errors": "Cannot cancel a fulfilled order"}
            order.update(cancelled_at="2025-01-12T09:00:00-05:00", cancel_reason=(seen.body or {}).get("reason"))
            return 200, {"order": order}
        if seen.method == "PUT" and len(parts) == 1:
            order["shipping_address"] = seen.body["order"]["shipping_address"]
            return 200, {"order": order}
        return 404, {"errors": "Not Found"}


class FakeWoo(FakeShop):
    """The WooCommerce REST API v3's order endpoints, behind Basic auth."""

    def route(self, seen):
        expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        if seen.headers.get("authorization") != expected:
            return 401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot view this resource.",
                         "data": {"status": 401}}
        tail = seen.path.removeprefix(f"{WOO_API}/orders/")
        if not seen.path.startswith(f"{WOO_API}/orders/") or not tail.isdigit():
            return 404, {"code": "rest_no_route", "message": "No route was found matching the URL and request method.",
                         "data": {"status": 404}}
        order = self.orders.get(int(tail))
        if order is None:
            return 404, {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.",
                         "data": {"status": 404}}
        if seen.method == "PUT":
            if "status" in seen.body:
                order["status"] = seen.body["status"]
            if "shipping" in seen.body:
                order["shipping"].update(seen.body["shipping"])
        return 200, order


def shopify_order(id=450789469, name="#1001", email=BOB, customer_id=207119551, financial="paid", fulfillment=None,
                  fulfillments=(), cancelled_at=None) -> dict:
    return {
        "id": id, "admin_graphql_api_id": f"gid://shopify/Order/{id}", "name": name, "number": 1,
        "email": email, "contact_email": email, "created_at": "2025-01-10T11:00:00-05:00",
        "cancelled_at": cancelled_at, "cancel_reason": None, "closed_at": None, "currency": "USD",
        "financial_status": financial, "fulfillment_status": fulfillment, "total_price": "597.00",
        "note": None, "tags": "", "phone": "+557734881234",
        "customer": {"id": customer_id, "email": email, "first_name": "Bob", "last_name": "Norman",
                     "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}"} if customer_id else None,
        "line_items": [
            {"id": 466157049, "name": "IPod Nano - 8gb - green", "title": "IPod Nano - 8gb", "quantity": 1,
             "sku": "IPOD2008GREEN", "price": "199.00"},
            {"id": 518995019, "name": "IPod Nano - 8gb - red", "title": "IPod Nano - 8gb", "quantity": 2,
             "sku": "IPOD2008RED", "price": "199.00"},
        ],
        "shipping_address": {
            "first_name": "Bob", "last_name": "Norman", "name": "Bob Norman", "company": None,
            "address1": "Chestnut Street 92", "address2": "Apt 4", "city": "Louisville", "province": "Kentucky",
            "province_code": "KY", "zip": "40202", "country": "United States", "country_code": "US",
            "phone": "555-625-1199", "latitude": 45.41634, "longitude": -75.6868,
        },
        "fulfillments": list(fulfillments),
    }


def shopify_fulfillment(created_at, shipment_status=None, status="success", number="1Z2345", company="UPS") -> dict:
    return {
        "id": next(FULFILLMENT_IDS), "created_at": created_at, "status": status, "service": "manual",
        "shipment_status": shipment_status, "tracking_company": company, "tracking_number": number,
        "tracking_numbers": [number], "tracking_url": f"https://www.ups.com/track?tracknum={number}",
        "tracking_urls": [f"https://www.ups.com/track?tracknum={number}"],
    }


def shopify_shipped(shipment_status=None, fulfillment="fulfilled", **fields) -> dict:
    """A Shopify order sent in one fulfillment, whose carrier reports `shipment_status`."""
    return shopify_order(fulfillment=fulfillment, fulfillments=[shopify_fulfillment(SENT, shipment_status)], **fields)


def woo_order(id=727, status="processing", email=JANE, customer_id=12, tracking=(), number=None) -> dict:
    return {
        "id": id, "parent_id": 0, "number": number or str(id), "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout", "status": status, "currency": "EUR", "total": "39.00",
        "date_created": "2025-02-03T10:20:30", "date_created_gmt": "2025-02-03T09:20:30",
        "customer_id": customer_id,
        "billing": {"first_name": "Jane", "last_name": "Doe", "address_1": "12 Rue de la Paix", "city": "Paris",
                    "postcode": "75002", "country": "FR", "email": email, "phone": "0123456789"},
        "shipping": {"first_name": "Jane", "last_name": "Doe", "company": "", "address_1": "12 Rue de la Paix",
                     "address_2": "Apt 4", "city": "Paris", "state": "", "postcode": "75002", "country": "FR",
                     "phone": ""},
        "line_items": [{"id": 315, "name": "Woo Single #1", "product_id": 93, "quantity": 2, "total": "6.00"},
                       {"id": 316, "name": "Ship Your Idea", "product_id": 22, "quantity": 1, "total": "33.00"}],
        "meta_data": [{"id": 13106, "key": "_wc_shipment_tracking_items", "value": list(tracking)}] if tracking else [],
    }


def woo_tracking(number, shipped_at, provider="", custom_provider="", link="") -> dict:
    return {"tracking_provider": provider, "custom_tracking_provider": custom_provider, "custom_tracking_link": link,
            "tracking_number": number, "date_shipped": str(shipped_at), "tracking_id": f"id-{number}"}


# ---- fixtures and helpers ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def private_hosts(settings):
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def shopify():
    shop = FakeShopify()
    yield shop
    shop.close()


@pytest.fixture
def woo():
    shop = FakeWoo()
    yield shop
    shop.close()


def connect(tenant, shop: FakeShop, timeout: float = 5.0, **credentials):
    if isinstance(shop, FakeShopify):
        given = {"token": SHOPIFY_TOKEN, **credentials}
        return services.store_connect(tenant, "shopify", shop.url, given, timeout=timeout)[0]
    given = {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET, **credentials}
    return services.store_connect(tenant, "woocommerce", shop.url, given, timeout=timeout)[0]


def act(connection, action, number, email=None, *, address=None, visitor=None, key=""):
    params = {"order_number": number, "email": email}
    if address is not None:
        params["address"] = address
    request = ActionRequest(action, connection.tenant.slug, None, "en", params,
                            visitor or {"id": None, "verified": False, "email": None}, idempotency_key=key)
    result, _ = services.action_run(connection, request)
    return result


def audit(tenant) -> ActionCall:
    return ActionCall.objects.filter(tenant=tenant).order_by("-pk").first()


# ---- both kinds ----------------------------------------------------------------------------------------

def test_both_kinds_are_registered_and_need_their_credentials(tenant, shopify, woo):
    assert KINDS["shopify"] is ShopifyConnector and KINDS["woocommerce"] is WooCommerceConnector
    assert "start_return" not in ShopifyConnector.actions and "start_return" not in WooCommerceConnector.actions
    with pytest.raises(InvalidField, match="needs token, or client_id and client_secret"):
        services.store_connect(tenant, "shopify", shopify.url, {"client_id": APP_CLIENT_ID})
    with pytest.raises(InvalidField, match="consumer_secret"):
        services.store_connect(tenant, "woocommerce", woo.url, {"consumer_key": WOO_KEY})


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
def test_an_unsupported_action_fails_without_a_call(tenant, kind, request):
    shop = request.getfixturevalue("shopify" if kind == "shopify" else "woo")
    result = act(connect(tenant, shop), "start_return", "1001", BOB)
    assert (result.status, result.detail) == ("failed", f"start_return not supported by {kind}")
    assert shop.seen == []


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
@pytest.mark.parametrize("fault, detail", [("500", "status 500"), ("bad json", "bad json")])
def test_an_error_status_or_an_answer_not_json_is_a_failure(tenant, kind, fault, detail, request):
    shop = request.getfixturevalue("shopify" if kind == "shopify" else "woo")
    shop.add(shopify_order() if kind == "shopify" else woo_order(id=1001, email=BOB))
    shop.faults["*"] = fault
    result = act(connect(tenant, shop), "order_status", "1001", BOB)
    assert (result.status, result.detail) == ("failed", detail)
    row = audit(tenant)
    assert (row.outcome, row.detail, row.result) == ("failed", detail, {})


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
def test_wrong_credentials_are_a_failure(tenant, kind, request):
    shop = request.getfixturevalue("shopify" if kind == "shopify" else "woo")
    shop.add(shopify_order() if kind == "shopify" else woo_order(id=1001, email=BOB))
    wrong = {"token": "shpat_wrong"} if kind == "shopify" else {"consumer_secret": "cs_wrong"}
    result = act(connect(tenant, shop, **wrong), "order_status", "1001", BOB)
    assert (result.status, result.detail) == ("failed", "status 401")


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
def test_a_hanging_platform_fails_within_the_connection_timeout(tenant, kind, request):
    shop = request.getfixturevalue("shopify" if kind == "shopify" else "woo")
    shop.add(shopify_order() if kind == "shopify" else woo_order(id=1001, email=BOB))
    shop.faults["*"] = "hang"
    connection = connect(tenant, shop, timeout=1.0)
    started = time.monotonic()
    result = act(connection, "order_status", "1001", BOB)
    assert time.monotonic() - started < 1.5
    assert (result.status, result.detail) == ("failed", "timeout")
    assert (audit(tenant).outcome, audit(tenant).detail) == ("failed", "timeout")


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
def test_a_look_up_and_its_write_share_one_deadline(tenant, kind, request):
    """The order is found late and the cancel request hangs: the action still ends within the timeout."""
    shop = request.getfixturevalue("shopify" if kind == "shopify" else "woo")
    shop.add(shopify_order() if kind == "shopify" else woo_order(id=1001, email=BOB))
    shop.faults.update({"GET": "slow", "POST" if kind == "shopify" else "PUT": "hang"})
    connection = connect(tenant, shop, timeout=1.0)
    started = time.monotonic()
    result = act(connection, "cancel_order", "1001", BOB)
    assert time.monotonic() - started < 1.5
    assert (result.status, result.detail) == ("failed", "timeout")
    assert [s.method for s in shop.seen] == ["GET", "POST" if kind == "shopify" else "PUT"]


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
def test_no_email_and_not_verified_asks_for_the_email_before_calling(tenant, kind, request):
    shop = request.getfixturevalue("shopify" if kind == "shopify" else "woo")
    connection = connect(tenant, shop)
    result = act(connection, "order_status", "1001")
    assert (result.status, result.needs) == ("needs", ["email"])
    result = act(connection, "change_address", "1001")
    assert (result.status, result.needs) == ("needs", ["email", "address"])
    assert shop.seen == []
    assert (audit(tenant).outcome, audit(tenant).detail) == ("needs", "needs email, address")


def test_credentials_never_reach_the_audit_or_the_logs(tenant, shopify, woo, caplog):
    caplog.set_level(logging.DEBUG)
    shopify.add(shopify_order())
    woo.add(woo_order(id=1001, email=BOB))
    other = TenantFactory()
    for connection in (connect(tenant, shopify), connect(other, woo)):
        assert all(secret not in connection.credentials for secret in SECRETS)  # stored encrypted
        act(connection, "order_status", "1001", BOB)  # ok
        act(connection, "order_status", "1001", "someone@else.example")  # forbidden
        act(connection, "order_status", "1001")  # needs
        act(connection, "change_address", "1001", BOB, address="1 New Road, Springfield")  # a write
    shopify.faults["*"] = woo.faults["*"] = "500"
    act(connect(tenant, shopify), "order_status", "1001", BOB)
    act(connect(other, woo), "order_status", "1001", BOB)
    woo.faults.clear()
    act(connect(other, woo, consumer_secret="cs_wrong"), "order_status", "1001", BOB)  # 401

    rows = list(ActionCall.objects.filter(tenant__in=[tenant, other]).values())
    assert len(rows) == 11
    assert {r["outcome"] for r in rows} == {"ok", "not_matched", "needs", "failed"}
    dumped = json.dumps(rows, default=str)
    logged = caplog.text
    assert "store action order_status" in logged and "status 500" in logged  # the logs were captured
    for secret in SECRETS + ("cs_wrong",):
        assert secret not in dumped
        assert secret not in logged
    assert BOB not in dumped  # e-mails are masked in the audit, and the order's own never kept


# ---- Shopify -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order, state, tracking", [
    (shopify_order(financial="pending"), "pending", None),
    (shopify_order(financial="authorized"), "processing", None),
    (shopify_order(financial="paid"), "processing", None),
    (shopify_shipped("label_printed"), "shipped", "1Z2345"),
    (shopify_shipped(), "shipped", "1Z2345"),
    (shopify_order(fulfillment="fulfilled", fulfillments=[
        shopify_fulfillment(SENT, "in_transit", status="cancelled", number="1ZOLD"),
        shopify_fulfillment("2025-01-12T10:00:00-05:00", "in_transit", number="1ZNEW"),
        shopify_fulfillment("2025-01-11T12:00:00-05:00", "delivered", number="1ZMID")]), "in_transit", "1ZNEW"),
    (shopify_shipped("attempted_delivery"), "in_transit", "1Z2345"),
    (shopify_shipped("ready_for_pickup"), "in_transit", "1Z2345"),
    (shopify_shipped("out_for_delivery"), "out_for_delivery", "1Z2345"),
    (shopify_shipped("delivered"), "delivered", "1Z2345"),
    (shopify_shipped("delivered", fulfillment="partial"), "shipped", "1Z2345"),
    (shopify_order(cancelled_at="2025-01-11T08:00:00-05:00", financial="refunded"), "cancelled", None),
    (shopify_shipped("delivered", financial="refunded"), "refunded", "1Z2345"),
])
def test_shopify_order_status_maps_state_and_tracking(tenant, shopify, order, state, tracking):
    shopify.add(order)
    result = act(connect(tenant, shopify), "order_status", "1001", BOB)
    assert result.status == "ok"
    assert result.data["state"] == state
    assert result.data["order_number"] == "#1001"
    assert result.data["placed_at"] == "2025-01-10"
    assert result.data["items"] == [{"name": "IPod Nano - 8gb - green", "quantity": 1},
                                    {"name": "IPod Nano - 8gb - red", "quantity": 2}]
    assert result.data["shipping_address"] == "Chestnut Street 92, Apt 4, Louisville, Kentucky, 40202, United States"
    if tracking:
        assert result.data["tracking_number"] == tracking
        assert result.data["carrier"] == "UPS"
        assert result.data["tracking_url"] == f"https://www.ups.com/track?tracknum={tracking}"
    else:
        assert "tracking_number" not in result.data and "carrier" not in result.data
    [seen] = shopify.seen
    assert (seen.method, seen.path) == ("GET", f"{ADMIN}/orders.json")
    assert seen.query["name"] == "#1001" and seen.query["status"] == "any"
    assert seen.headers["x-shopify-access-token"] == SHOPIFY_TOKEN
    row = audit(tenant)
    assert (row.action, row.outcome, row.result) == ("order_status", "ok", result.data)
    assert row.params == {"order_number": "1001", "email": "b***@mail.example.com"}


@pytest.mark.parametrize("number", ["1001", "#1001", " #1001 "])
def test_shopify_finds_the_order_of_exactly_that_name(tenant, shopify, number):
    shopify.add(shopify_order(id=1, name="#10010", email=BOB))
    shopify.add(shopify_shipped("delivered", id=2, name="#1001", email=BOB))
    result = act(connect(tenant, shopify), "order_status", number, BOB)
    assert (result.status, result.data["order_number"], result.data["state"]) == ("ok", "#1001", "delivered")
    assert shopify.seen[0].query["name"] == "#1001"


def test_shopify_unknown_order_is_not_found(tenant, shopify):
    shopify.add(shopify_order(id=1, name="#10010"))
    result = act(connect(tenant, shopify), "order_status", "1001", BOB)
    assert result.status == "not_found"
    assert (audit(tenant).outcome, audit(tenant).detail) == ("not_matched", "not_found")


@pytest.mark.parametrize("email, visitor, status", [
    (BOB, None, "ok"),
    ("  Bob.Norman@MAIL.example.com ", None, "ok"),
    ("someone@else.example", None, "forbidden"),
    (None, {"id": "207119551", "verified": True, "email": None}, "ok"),
    (None, {"id": "gid://shopify/Customer/207119551", "verified": True, "email": None}, "ok"),
    (None, {"id": "other-customer", "verified": True, "email": "BOB.norman@mail.example.com"}, "ok"),
    (None, {"id": "other-customer", "verified": True, "email": "someone@else.example"}, "forbidden"),
    ("someone@else.example", {"id": "207119551", "verified": False, "email": BOB}, "forbidden"),  # not verified
])
def test_shopify_identity_check(tenant, shopify, email, visitor, status):
    shopify.add(shopify_order())
    result = act(connect(tenant, shopify), "order_status", "1001", email, visitor=visitor)
    assert result.status == status
    assert result.data == ({} if status == "forbidden" else result.data)
    assert audit(tenant).outcome == ("ok" if status == "ok" else "not_matched")


def test_shopify_matches_the_customers_email_too(tenant, shopify):
    order = shopify.add(shopify_order())
    order["email"] = order["contact_email"] = "orders@bob.example"
    result = act(connect(tenant, shopify), "order_status", "1001", BOB)  # the customer's account e-mail
    assert result.status == "ok"


def test_shopify_cancel_an_unfulfilled_order(tenant, shopify):
    shopify.add(shopify_order(financial="paid"))
    result = act(connect(tenant, shopify), "cancel_order", "#1001", BOB, key="k-cancel-1")
    assert (result.status, result.data["state"]) == ("ok", "cancelled")
    [write] = shopify.writes()
    assert (write.method, write.path) == ("POST", f"{ADMIN}/orders/450789469/cancel.json")
    assert write.body == {"reason": "customer", "email": True}
    assert write.headers["x-shopify-access-token"] == SHOPIFY_TOKEN
    assert write.headers["content-type"] == "application/json"
    assert shopify.orders[450789469]["cancelled_at"]
    row = audit(tenant)
    assert (row.action, row.outcome, row.result["state"], row.idempotency_key) == (
        "cancel_order", "ok", "cancelled", "k-cancel-1")
    # The same confirmed request again is answered from its record, not sent again.
    again = act(connect(tenant, shopify), "cancel_order", "#1001", BOB, key="k-cancel-1")
    assert again.data["state"] == "cancelled" and len(shopify.writes()) == 1


@pytest.mark.parametrize("order, state", [
    (shopify_shipped("in_transit"), "in_transit"),
    (shopify_shipped(fulfillment="partial"), "shipped"),
    (shopify_order(financial="refunded"), "refunded"),
])
def test_shopify_cancel_once_shipped_is_too_late(tenant, shopify, order, state):
    """The dialogue refuses it after its look-up; here the order moved on before the visitor's yes."""
    shopify.add(order)
    result = act(connect(tenant, shopify), "cancel_order", "1001", BOB)
    assert (result.status, result.detail) == ("failed", f"too late: {state}")
    assert (audit(tenant).outcome, audit(tenant).detail) == ("failed", f"too late: {state}")
    assert shopify.writes() == []


def test_shopify_cancel_an_order_already_cancelled_answers_cancelled(tenant, shopify):
    shopify.add(shopify_order(cancelled_at="2025-01-11T08:00:00-05:00"))
    result = act(connect(tenant, shopify), "cancel_order", "1001", BOB)
    assert (result.status, result.data["state"]) == ("ok", "cancelled")
    assert shopify.writes() == []


def test_shopify_an_order_at_a_fulfillment_service_is_left_to_a_person(tenant, shopify):
    shopify.add(shopify_order(fulfillments=[shopify_fulfillment(SENT, status="open")]))
    result = act(connect(tenant, shopify), "cancel_order", "1001", BOB)
    assert (result.status, result.detail) == ("failed", "fulfillment in progress")
    assert shopify.writes() == []


def test_shopify_change_address_keeps_the_rest_of_the_address(tenant, shopify):
    shopify.add(shopify_order())
    result = act(connect(tenant, shopify), "change_address", "1001", BOB, address="  221B   Baker Street ")
    assert result.status == "ok"
    assert result.data["shipping_address"] == "221B Baker Street, Apt 4, Louisville, Kentucky, 40202, United States"
    [write] = shopify.writes()
    assert (write.method, write.path) == ("PUT", f"{ADMIN}/orders/450789469.json")
    assert write.body == {"order": {"id": 450789469, "shipping_address": {
        "first_name": "Bob", "last_name": "Norman", "address1": "221B Baker Street", "address2": "Apt 4",
        "city": "Louisville", "province": "Kentucky", "province_code": "KY", "zip": "40202",
        "country": "United States", "country_code": "US", "phone": "555-625-1199"}}}
    assert audit(tenant).params["address"] == "  2***"


@pytest.mark.parametrize("order, state", [
    (shopify_shipped(), "shipped"),
    (shopify_order(cancelled_at="2025-01-11T08:00:00-05:00"), "cancelled"),
])
def test_shopify_change_address_once_shipped_is_too_late(tenant, shopify, order, state):
    shopify.add(order)
    result = act(connect(tenant, shopify), "change_address", "1001", BOB, address="221B Baker Street")
    assert (result.status, result.detail) == ("failed", f"too late: {state}")
    assert shopify.orders[450789469]["shipping_address"]["address1"] == "Chestnut Street 92"
    assert shopify.writes() == []


def test_shopify_a_404_on_the_orders_list_is_a_failure_not_an_unknown_order(tenant, shopify):
    """orders.json always exists on a shop: a 404 there is a wrong address, which the manager must hear of."""
    connection = connect(tenant, shopify)
    shopify.route = lambda seen: (404, {"errors": "Not Found"})
    result = act(connection, "order_status", "1001", BOB)
    assert (result.status, result.detail) == ("failed", "status 404")


# ---- WooCommerce ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("order, state, tracking", [
    (woo_order(status="pending"), "pending", None),
    (woo_order(status="on-hold"), "pending", None),
    (woo_order(status="processing"), "processing", None),
    (woo_order(status="processing", tracking=[woo_tracking("LA123", 1738600000, provider="La Poste")]),
     "shipped", "LA123"),
    (woo_order(status="completed"), "shipped", None),
    (woo_order(status="completed", tracking=[
        woo_tracking("OLD1", 1738500000, provider="usps"),
        woo_tracking("NEW2", 1738700000, custom_provider="Chronopost", link="https://chrono.example/t/NEW2"),
        woo_tracking("MID3", 1738600000, provider="fedex")]), "shipped", "NEW2"),
    (woo_order(status="cancelled"), "cancelled", None),
    (woo_order(status="refunded"), "refunded", None),
    (woo_order(status="failed"), "cancelled", None),
    (woo_order(status="delivered"), "delivered", None),  # a plugin's status named like a platform state
])
def test_woo_order_status_maps_state_and_tracking(tenant, woo, order, state, tracking):
    woo.add(order)
    result = act(connect(tenant, woo), "order_status", "727", JANE)
    assert result.status == "ok"
    assert result.data["state"] == state
    assert result.data["order_number"] == "727"
    assert result.data["placed_at"] == "2025-02-03"
    assert result.data["items"] == [{"name": "Woo Single #1", "quantity": 2}, {"name": "Ship Your Idea", "quantity": 1}]
    assert result.data["shipping_address"] == "12 Rue de la Paix, Apt 4, Paris, 75002, FR"
    if tracking == "NEW2":
        assert (result.data["carrier"], result.data["tracking_url"]) == ("Chronopost", "https://chrono.example/t/NEW2")
    if tracking:
        assert result.data["tracking_number"] == tracking
    else:
        assert "tracking_number" not in result.data
    [seen] = woo.seen
    assert (seen.method, seen.path, seen.query) == ("GET", f"{WOO_API}/orders/727", {})
    user, _, password = base64.b64decode(seen.headers["authorization"].removeprefix("Basic ")).decode().partition(":")
    assert (user, password) == (WOO_KEY, WOO_SECRET)
    assert audit(tenant).result == result.data


def test_woo_a_status_it_does_not_know_is_a_failure(tenant, woo):
    woo.add(woo_order(status="awaiting-shipment"))
    result = act(connect(tenant, woo), "order_status", "727", JANE)
    assert (result.status, result.detail) == ("failed", "unknown status awaiting-shipment")


@pytest.mark.parametrize("number, asked", [("727", "727"), ("#727", "727"), ("WC-727", "727"), ("wc-000727", "727")])
def test_woo_order_number_is_the_order_id(tenant, woo, number, asked):
    woo.add(woo_order(number="WC-727" if "WC" in number.upper() else None))
    result = act(connect(tenant, woo), "order_status", number, JANE)
    assert result.status == "ok"
    assert woo.seen[0].path == f"{WOO_API}/orders/{asked}"


@pytest.mark.parametrize("number", ["ABC", "#", "0"])
def test_woo_a_number_without_an_id_is_not_found_without_a_call(tenant, woo, number):
    result = act(connect(tenant, woo), "order_status", number, JANE)
    assert result.status == "not_found"
    assert woo.seen == []


def test_woo_not_found_and_not_an_order(tenant, woo):
    connection = connect(tenant, woo)
    assert act(connection, "order_status", "999", JANE).status == "not_found"
    woo.add(woo_order(id=728, status="checkout-draft"))
    assert act(connection, "order_status", "728", JANE).status == "not_found"
    # A store whose order numbers are not the ids (a sequential-numbers plugin): id 729 is another order.
    woo.add(woo_order(id=729, number="1042"))
    assert act(connection, "order_status", "729", JANE).status == "not_found"


def test_woo_no_api_at_the_address_is_a_failure(tenant, woo):
    connection = connect(tenant, woo)
    woo.route = lambda seen: (404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}})
    result = act(connection, "order_status", "727", JANE)
    assert (result.status, result.detail) == ("failed", "status 404")


@pytest.mark.parametrize("email, visitor, customer_id, status", [
    (JANE, None, 12, "ok"),
    ("JANE.DOE@example.com", None, 12, "ok"),
    ("someone@else.example", None, 12, "forbidden"),
    (None, {"id": "12", "verified": True, "email": None}, 12, "ok"),
    (None, {"id": "13", "verified": True, "email": JANE}, 12, "ok"),
    (None, {"id": "13", "verified": True, "email": "x@else.example"}, 12, "forbidden"),
    (None, {"id": "0", "verified": True, "email": None}, 0, "forbidden"),  # a guest's order is no account's
])
def test_woo_identity_check(tenant, woo, email, visitor, customer_id, status):
    woo.add(woo_order(customer_id=customer_id))
    result = act(connect(tenant, woo), "order_status", "727", email, visitor=visitor)
    assert result.status == status


@pytest.mark.parametrize("status", ["pending", "on-hold", "processing"])
def test_woo_cancel_while_not_yet_sent(tenant, woo, status):
    woo.add(woo_order(status=status))
    result = act(connect(tenant, woo), "cancel_order", "727", JANE)
    assert (result.status, result.data["state"]) == ("ok", "cancelled")
    [write] = woo.writes()
    assert (write.method, write.path, write.body) == ("PUT", f"{WOO_API}/orders/727", {"status": "cancelled"})
    assert write.headers["authorization"].startswith("Basic ")
    assert woo.orders[727]["status"] == "cancelled"


@pytest.mark.parametrize("order, status, detail", [
    (woo_order(status="completed"), "failed", "too late: shipped"),
    (woo_order(status="processing", tracking=[woo_tracking("LA123", 1738600000)]), "failed", "too late: shipped"),
    (woo_order(status="refunded"), "failed", "too late: refunded"),
    (woo_order(status="failed"), "ok", ""),  # its payment failed: it reads as cancelled already
    (woo_order(status="cancelled"), "ok", ""),
])
def test_woo_cancel_once_sent_is_too_late(tenant, woo, order, status, detail):
    woo.add(order)
    result = act(connect(tenant, woo), "cancel_order", "727", JANE)
    assert (result.status, result.detail) == (status, detail)
    if status == "ok":
        assert result.data["state"] == "cancelled"
    assert woo.writes() == []


def test_woo_change_address(tenant, woo):
    woo.add(woo_order(status="processing"))
    result = act(connect(tenant, woo), "change_address", "727", JANE, address="8 Avenue Foch")
    assert (result.status, result.data["shipping_address"]) == ("ok", "8 Avenue Foch, Apt 4, Paris, 75002, FR")
    [write] = woo.writes()
    assert (write.method, write.path) == ("PUT", f"{WOO_API}/orders/727")
    assert write.body == {"shipping": {
        "first_name": "Jane", "last_name": "Doe", "company": "", "address_1": "8 Avenue Foch", "address_2": "Apt 4",
        "city": "Paris", "state": "", "postcode": "75002", "country": "FR", "phone": ""}}


@pytest.mark.parametrize("status, state", [("completed", "shipped"), ("cancelled", "cancelled")])
def test_woo_change_address_once_sent_is_too_late(tenant, woo, status, state):
    woo.add(woo_order(status=status))
    result = act(connect(tenant, woo), "change_address", "727", JANE, address="8 Avenue Foch")
    assert (result.status, result.detail) == ("failed", f"too late: {state}")
    assert woo.orders[727]["shipping"]["address_1"] == "12 Rue de la Paix"
    assert woo.writes() == []


# ---- Shopify: a Dev Dashboard app (client credentials) ----------------------------------------------------------

def test_a_dev_dashboard_app_gets_its_token_once_and_again_when_it_expires(tenant, shopify):
    from chatbot.actions.connectors import shopify as shopify_module

    shopify_module._app_tokens.clear()
    shopify.add(shopify_order())
    connection = connect(tenant, shopify, token="", client_id=APP_CLIENT_ID, client_secret=APP_CLIENT_SECRET)
    assert act(connection, "order_status", "#1001", BOB).status == "ok"
    assert act(connection, "order_status", "#1001", BOB).status == "ok"
    assert shopify.app_tokens == ["shpat_app_1"]  # kept between calls
    assert [s.headers["x-shopify-access-token"] for s in shopify.seen if s.method == "GET"] == ["shpat_app_1"] * 2
    grant = next(s for s in shopify.seen if s.path == "/admin/oauth/access_token")
    assert grant.headers["content-type"] == "application/x-www-form-urlencoded"
    shopify_module._app_tokens.clear()
    shopify.app_token_seconds = 30  # within a minute of expiring: fetched anew for each call
    for _ in range(2):
        assert act(connection, "order_status", "#1001", BOB).status == "ok"
    assert shopify.app_tokens == ["shpat_app_1", "shpat_app_2", "shpat_app_3"]
    assert APP_CLIENT_SECRET not in json.dumps(audit(tenant).params)


def test_a_dev_dashboard_app_with_a_wrong_secret_fails_clearly(tenant, shopify):
    from chatbot.actions.connectors import shopify as shopify_module

    shopify_module._app_tokens.clear()
    shopify.add(shopify_order())
    connection = connect(tenant, shopify, token="", client_id=APP_CLIENT_ID, client_secret="wrong")
    result = act(connection, "order_status", "#1001", BOB)
    assert (result.status, result.detail) == ("failed", "no access token (status 400)")

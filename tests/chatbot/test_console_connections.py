"""The console's Order system page (managers connect, test and disconnect the store's order system; agents get 403;
credentials never show after the one showing of a generated webhook secret), the review's store action filters,
the insights' store actions per day, and the admin's connection and call pages.

The test look-ups call a real HTTP server on 127.0.0.1 that speaks the store actions webhook and checks the
signature with the secret the page showed."""
import json
import logging
import re
import threading
from datetime import date, datetime, timedelta, timezone as dt_timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.actions.connectors.webhook import signature_valid
from chatbot.actions.credentials import credentials_open
from chatbot.review import insights, queries as review
from chatbot.review.insights import Period
from chatbot.models import ActionCall, StoreConnection
from tests.factories import ConversationFactory, TenantFactory, UserFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db

MY_SECRET = "whsec_typed-by-the-manager-0123456789"
SHOPIFY_TOKEN = "shpat_never-show-this-token-987654"
ORDER = {"order_number": "NW-482913", "state": "shipped", "carrier": "DHL", "tracking_number": "JD0123456789",
         "tracking_url": "https://track.example/JD0123456789", "placed_at": "2026-11-28T09:12:00Z",
         "estimated_delivery": "2026-12-04", "items": [{"name": "Trail shoes", "quantity": 1}],
         "shipping_address": "12 Long Road, Leeds"}


# --- a store's order system: a real local HTTP server ---------------------------------------------------------


class OrderSystem:
    """The store's webhook endpoint on 127.0.0.1: checks X-Chatbot-Signature with `secret` (401 when it does not
    match), then answers `answer(request JSON) -> (status, JSON body)`."""

    def __init__(self):
        self.secret = ""
        self.requests: list[dict] = []
        self.answer = lambda request: (200, {"status": "ok", "data": ORDER})
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = signature_valid(owner.secret, self.headers.get("X-Chatbot-Timestamp", ""), body,
                                         self.headers.get("X-Chatbot-Signature", ""))
                request = json.loads(body)
                owner.requests.append(request)
                status, answer = owner.answer(request) if signed else (401, {"status": "failed"})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/chatbot/orders"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def order_system():
    system = OrderSystem()
    yield system
    system.stop()


@pytest.fixture
def private_hosts(settings):
    """Plain http and 127.0.0.1 allowed, as in development: the local order system is reachable."""
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = True
    return settings


# --- people and pages ------------------------------------------------------------------------------------------


@pytest.fixture
def store():
    return TenantFactory(name="Alpha Outdoor", slug="alpha")


@pytest.fixture
def manager(store):
    return agent_of(store, role="manager", username="mia")


@pytest.fixture
def agent(store):
    return agent_of(store, username="ada")


def client_of(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def connect_form(url: str, **extra) -> dict:
    return {"tenant": "alpha", "kind": "webhook", "url": url, "webhook_secret": "",
            "intent_actions": "track_order = order_status\ncancel_request = cancel_order",
            "order_pattern": r"NW-\d{6}", "timeout": "5", **extra}


def field_errors(html: str, field: str) -> list[str]:
    """The errors the page shows under a field of the connect or test form (by the field's id)."""
    block = re.search(rf'id="id_{field}".*?(?=<div class="field|</fieldset>|</form>)', html, re.S)
    assert block, f"no field {field} on the page"
    return re.findall(r'<p class="field-error" role="alert">(.*?)</p>', block.group(0), re.S)


def shown_secret(html: str) -> str:
    found = re.search(r"<code class=\"orders-secret-value\" data-secret>([^<]+)</code>", html)
    return found.group(1) if found else ""


def connect(client: Client, system: OrderSystem, **extra) -> str:
    """Connect alpha to `system` with a generated secret, hand the secret the page shows to the system, and return
    it."""
    response = client.post("/console/orders/connect/", connect_form(system.url, **extra))
    assert response.status_code == 200, response.content.decode()[:2000]
    system.secret = shown_secret(response.content.decode())
    assert system.secret.startswith("whsec_")
    return system.secret


# --- who may open the page -------------------------------------------------------------------------------------


def test_a_manager_sees_the_page_and_the_nav_link_an_agent_neither(store, manager, agent):
    response = client_of(manager).get("/console/orders/")
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Order system</a>" in html and 'aria-current="page">Order system' in html
    assert "No order system connected" in html and 'name="webhook_secret"' in html
    assert "<script>" not in html  # CSP: the page's script is a file

    as_agent = client_of(agent)
    assert ">Order system</a>" not in as_agent.get("/console/").content.decode()
    for url in ("/console/orders/", "/console/orders/?tenant=alpha"):
        response = as_agent.get(url)
        assert response.status_code == 403 and "Not allowed" in response.content.decode(), url


def test_an_agent_cannot_connect_test_or_disconnect(store, agent, private_hosts):
    StoreConnection.objects.create(tenant=store, kind="webhook", url="https://orders.example/hook")
    client = client_of(agent)
    assert client.post("/console/orders/connect/", connect_form("https://elsewhere.example/")).status_code == 403
    assert client.post("/console/orders/test/", {"tenant": "alpha", "order_number": "NW-482913"}).status_code == 403
    assert client.post("/console/orders/disconnect/", {"tenant": "alpha"}).status_code == 403
    assert StoreConnection.objects.get(tenant=store).url == "https://orders.example/hook"
    assert not ActionCall.objects.exists()


def test_another_stores_page_answers_like_a_missing_one(store, manager):
    other = TenantFactory(name="Bravo Hidden", slug="bravo")
    StoreConnection.objects.create(tenant=other, kind="webhook", url="https://bravo-orders.example/hook")
    client = client_of(manager)
    theirs, missing = client.get("/console/orders/?tenant=bravo"), client.get("/console/orders/?tenant=nowhere")
    assert theirs.status_code == missing.status_code == 404 and theirs.content == missing.content
    assert client.post("/console/orders/disconnect/", {"tenant": "bravo"}).status_code == 404
    assert StoreConnection.objects.filter(tenant=other).exists()
    assert "bravo-orders" not in client.get("/console/orders/").content.decode()


def test_a_manager_of_two_stores_picks_one(store, manager):
    other = TenantFactory(name="Bravo Bikes", slug="bravo")
    agent_of(other, role="manager", username=manager.username)
    StoreConnection.objects.create(tenant=other, kind="webhook", url="https://bravo-orders.example/hook")
    client = client_of(manager)
    html = client.get("/console/orders/?tenant=bravo").content.decode()
    assert '<option value="alpha"' in html and "bravo-orders.example" in html
    assert "bravo-orders.example" not in client.get("/console/orders/?tenant=alpha").content.decode()


def test_the_forms_need_the_csrf_token(store, manager, private_hosts):
    client = client_of(manager, enforce_csrf_checks=True)
    assert client.post("/console/orders/connect/", connect_form("http://127.0.0.1:9/")).status_code == 403
    assert not StoreConnection.objects.exists()
    assert 'name="csrfmiddlewaretoken"' in client.get("/console/orders/").content.decode()


# --- connecting ------------------------------------------------------------------------------------------------


def test_connecting_a_webhook_shows_its_new_secret_once_and_never_again(store, manager, private_hosts, order_system,
                                                                      caplog):
    client = client_of(manager)
    with caplog.at_level(logging.DEBUG):
        response = client.post("/console/orders/connect/", connect_form(order_system.url))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    secret = shown_secret(html)
    connection = StoreConnection.objects.get(tenant=store)
    assert credentials_open(connection.credentials) == {"secret": secret}
    assert secret not in connection.credentials  # encrypted at rest
    assert "Put this secret in your endpoint" in html and html.count(secret) == 1
    assert secret not in caplog.text

    page = client.get("/console/orders/").content.decode()
    assert secret not in page and "orders-secret-value" not in page
    assert connection.credentials not in page
    assert "127.0.0.1" in page and "Your own endpoint (webhook)" in page
    assert "<code>track_order</code></td><td><code>order_status</code>" in page
    assert "NW-\\d{6}" in page and 'data-fact="timeout">5 s' in page
    assert 'data-fact="failures">0<' in page and "closed: calls go through" in page
    # the form shows the settings again, never the credentials
    assert re.search(r'<input type="password" name="webhook_secret"[^>]*>', page)
    assert not re.search(r'name="webhook_secret"[^>]*value=', page)
    assert "track_order = order_status" in page


def test_a_secret_the_manager_typed_is_used_and_never_shown_back(store, manager, private_hosts, order_system):
    client = client_of(manager)
    response = client.post("/console/orders/connect/", connect_form(order_system.url, webhook_secret=MY_SECRET),
                           follow=True)
    assert response.status_code == 200 and response.redirect_chain
    html = response.content.decode()
    assert MY_SECRET not in html and "orders-secret-value" not in html and "Connected Alpha Outdoor" in html
    assert credentials_open(StoreConnection.objects.get(tenant=store).credentials) == {"secret": MY_SECRET}
    # a refused submit does not render the typed secret back either
    refused = client.post("/console/orders/connect/", connect_form("ftp://nowhere", webhook_secret=MY_SECRET))
    assert refused.status_code == 400 and MY_SECRET not in refused.content.decode()


def test_reconnecting_keeps_the_secret_unless_asked_for_a_new_one(store, manager, private_hosts, order_system):
    client = client_of(manager)
    first = connect(client, order_system)

    kept = client.post("/console/orders/connect/", connect_form(
        order_system.url, keep_credentials="on", timeout="2.5", intent_actions="where_is = order_status"))
    assert kept.status_code == 302
    connection = StoreConnection.objects.get(tenant=store)
    assert credentials_open(connection.credentials) == {"secret": first}
    assert (connection.timeout, connection.intent_actions) == (2.5, {"where_is": "order_status"})
    assert first not in client.get("/console/orders/").content.decode()

    renewed = client.post("/console/orders/connect/", connect_form(order_system.url))  # keep unticked
    second = shown_secret(renewed.content.decode())
    assert second.startswith("whsec_") and second != first
    assert credentials_open(StoreConnection.objects.get(tenant=store).credentials) == {"secret": second}


def test_credentials_are_not_kept_for_another_host(store, manager, private_hosts, order_system, monkeypatch):
    """Else a manager could send the stored secret or token to a server of hers and read it there."""
    client = client_of(manager)
    first = connect(client, order_system)
    elsewhere = order_system.url.replace("127.0.0.1", "localhost")
    moved = client.post("/console/orders/connect/", connect_form(elsewhere, keep_credentials="on"))
    second = shown_secret(moved.content.decode())
    assert second.startswith("whsec_") and second != first
    assert credentials_open(StoreConnection.objects.get(tenant=store).credentials) == {"secret": second}

    from chatbot.actions import connectors
    from chatbot.actions.connectors.webhook import WebhookConnector

    class TokenConnector(WebhookConnector):
        kind = "shopify"
        credential_names = ("token",)

    monkeypatch.setitem(connectors.KINDS, "shopify", TokenConnector)
    assert client.post("/console/orders/connect/", connect_form(
        order_system.url, kind="shopify", shopify_token=SHOPIFY_TOKEN)).status_code == 302
    same_host = client.post("/console/orders/connect/", connect_form(
        order_system.url + "/v2", kind="shopify", keep_credentials="on"))
    assert same_host.status_code == 302
    assert credentials_open(StoreConnection.objects.get(tenant=store).credentials) == {"token": SHOPIFY_TOKEN}
    port = order_system.server.server_address[1]
    other_port = order_system.url.replace(f":{port}/", f":{port + 1 if port < 65535 else port - 1}/")
    refused = client.post("/console/orders/connect/", connect_form(other_port, kind="shopify", keep_credentials="on"))
    assert refused.status_code == 400
    assert "needs token" in field_errors(refused.content.decode(), "shopify_token")[0]
    assert StoreConnection.objects.get(tenant=store).url == order_system.url + "/v2"


def test_an_error_report_of_a_connect_shows_no_credential(store, manager, private_hosts, monkeypatch, settings):
    """DEBUG pages and the admins' e-mails show the POST and every frame's variables: not the credentials."""
    import sys

    from django.core.signals import got_request_exception
    from django.views.debug import ExceptionReporter

    from chatbot.actions import services

    def broken(tenant, kind, url, credentials, **options):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "store_connect", broken)
    reports = []

    def report(sender, request, **kwargs):
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    got_request_exception.connect(report)
    try:
        response = client_of(manager, raise_request_exception=False).post(
            "/console/orders/connect/", connect_form("http://127.0.0.1:9/", webhook_secret=MY_SECRET))
    finally:
        got_request_exception.disconnect(report)
    assert response.status_code == 500
    [text] = reports
    assert "the database went away" in text and "webhook_secret" in text
    assert MY_SECRET not in text


@pytest.mark.parametrize("url, allow_private, message", [
    ("http://169.254.169.254/", False, "Only https addresses can be called"),
    ("https://169.254.169.254/latest/meta-data/", False, "a private or reserved address"),
    ("https://127.0.0.1:8443/orders", False, "a private or reserved address"),
    ("https://user:pw@orders.example/", False, "not in its address"),
    ("ftp://orders.example/", True, "Only https addresses can be called"),
    ("", False, "Give the order system"),
])
def test_an_address_the_platform_may_not_call_is_refused_beside_the_field(store, manager, settings, url,
                                                                          allow_private, message):
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = allow_private
    response = client_of(manager).post("/console/orders/connect/", connect_form(url))
    assert response.status_code == 400
    errors = field_errors(response.content.decode(), "url")
    assert errors and message in errors[0], errors
    assert not StoreConnection.objects.exists()


@pytest.mark.parametrize("field, value, message", [
    ("intent_actions", "track_order = fly_to_the_moon", "is not an action a webhook connection performs"),
    ("intent_actions", "track_order order_status", "Line 1: write intent = action"),
    ("intent_actions", "a = order_status\na = cancel_order", "mapped twice"),
    ("order_pattern", "NW-(", "does not compile"),
    ("order_pattern", "", "Give the order-number pattern"),
    ("order_pattern", "x*", "matches an empty text"),
    ("timeout", "99", "0.5 to 30 seconds"),
    ("timeout", "soon", "Give the timeout in seconds"),
])
def test_the_services_refusals_stand_beside_their_field(store, manager, private_hosts, order_system, field, value,
                                                        message):
    response = client_of(manager).post("/console/orders/connect/", connect_form(order_system.url, **{field: value}))
    assert response.status_code == 400
    errors = field_errors(response.content.decode(), field)
    assert errors and message in errors[0], errors
    assert not StoreConnection.objects.exists()


def test_a_kind_without_its_credentials_is_refused_on_the_credential(store, manager, private_hosts, order_system,
                                                                     monkeypatch):
    """A kind whose credentials are not generated (Shopify's token) must be typed. Shopify's connector is stood in
    for by one that speaks the webhook, so this tests the form and not Shopify's address rules."""
    from chatbot.actions import connectors
    from chatbot.actions.connectors.webhook import WebhookConnector

    class TokenConnector(WebhookConnector):
        kind = "shopify"
        credential_names = ("token",)

    monkeypatch.setitem(connectors.KINDS, "shopify", TokenConnector)
    client = client_of(manager)
    page = client.get("/console/orders/").content.decode()
    assert 'name="shopify_token"' in page and 'fieldset class="orders-credentials" data-kind="shopify"' in page
    response = client.post("/console/orders/connect/", connect_form(order_system.url, kind="shopify"))
    assert response.status_code == 400
    assert "needs token" in field_errors(response.content.decode(), "shopify_token")[0]
    typed = client.post("/console/orders/connect/", connect_form(order_system.url, kind="shopify",
                                                                 shopify_token=SHOPIFY_TOKEN, webhook_secret="x"))
    assert typed.status_code == 302
    assert credentials_open(StoreConnection.objects.get(tenant=store).credentials) == {"token": SHOPIFY_TOKEN}
    assert SHOPIFY_TOKEN not in client.get("/console/orders/").content.decode()


# --- the test look-up ------------------------------------------------------------------------------------------


def test_looking_an_order_up_shows_the_order_from_the_store(store, manager, private_hosts, order_system):
    client = client_of(manager)
    secret = connect(client, order_system)
    response = client.post("/console/orders/test/", {"tenant": "alpha", "order_number": " nw-482913 ",
                                                     "email": "Jo.Buyer@Example.com"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-lookup="ok"' in html and "Found the order" in html
    assert re.search(r"data-latency>in \d+ ms", html)
    for text in ("shipped", "DHL", "JD0123456789", "2026-11-28", "2026-12-04", "1 × Trail shoes",
                 'href="https://track.example/JD0123456789"'):
        assert text in html, text
    assert secret not in html

    [request] = order_system.requests
    assert request["action"] == "order_status" and request["tenant"] == "alpha"
    assert request["params"] == {"order_number": "nw-482913", "email": "Jo.Buyer@Example.com"}
    call = ActionCall.objects.get()
    assert (call.action, call.outcome, call.conversation_id) == ("order_status", "ok", None)
    assert call.params == {"order_number": "nw-482913", "email": "J***@Example.com"}
    # the call is listed, its e-mail masked
    page = client.get("/console/orders/").content.decode()
    assert f'data-call="{call.id}" data-outcome="ok"' in page
    assert "J***@Example.com" in page and "Jo.Buyer" not in page


@pytest.mark.parametrize("answer, outcome, shown", [
    (lambda r: (500, {"error": "boom"}), "failed", "Why: status 500"),
    (lambda r: (200, {"status": "not_found"}), "not_matched", "No such order"),
    (lambda r: (200, {"status": "needs", "params": ["email"]}), "needs", "It needs: email."),
    (lambda r: (200, {"status": "ok", "data": {**ORDER, "order_number": "NW-999999"}}), "failed",
     "Why: bad answer: no order state, or another order"),
])
def test_a_look_up_the_store_does_not_answer_with_the_order_says_why(store, manager, private_hosts, order_system,
                                                                      answer, outcome, shown):
    client = client_of(manager)
    connect(client, order_system)
    order_system.answer = answer
    response = client.post("/console/orders/test/", {"tenant": "alpha", "order_number": "NW-482913"})
    assert response.status_code == 200
    assert shown in response.content.decode()
    assert ActionCall.objects.get().outcome == outcome


def test_a_look_up_with_the_wrong_secret_fails_and_leaves_the_circuit_to_visitors_calls(store, manager,
                                                                                        private_hosts, order_system):
    client = client_of(manager)
    connect(client, order_system)
    order_system.secret = "whsec_another"
    html = client.post("/console/orders/test/", {"tenant": "alpha", "order_number": "NW-482913"}).content.decode()
    assert "Why: status 401" in html
    assert StoreConnection.objects.get(tenant=store).failures_in_a_row == 0  # a manager's tries stop nobody's calls
    assert 'data-fact="failures">0<' in client.get("/console/orders/").content.decode()


def test_a_look_up_goes_through_an_open_circuit_to_see_whether_the_store_is_back(store, manager, private_hosts,
                                                                                 order_system):
    from datetime import timedelta

    from django.utils import timezone

    client = client_of(manager)
    connect(client, order_system)
    StoreConnection.objects.filter(tenant=store).update(failures_in_a_row=5,
                                                         circuit_open_until=timezone.now() + timedelta(minutes=1))
    client.post("/console/orders/test/", {"tenant": "alpha", "order_number": "NW-482913"})
    assert ActionCall.objects.get().detail != "circuit open"


def test_a_look_up_needs_an_order_number(store, manager, private_hosts, order_system):
    client = client_of(manager)
    connect(client, order_system)
    response = client.post("/console/orders/test/", {"tenant": "alpha", "order_number": "  "})
    assert response.status_code == 400
    assert "Give an order number to look up." in field_errors(response.content.decode(), "order_number")[0]
    assert not order_system.requests and not ActionCall.objects.exists()


def test_a_look_up_without_a_connection_is_refused_on_the_page(store, manager):
    response = client_of(manager).post("/console/orders/test/", {"tenant": "alpha", "order_number": "NW-482913"})
    assert response.status_code == 400
    assert "This store has no order system connected." in response.content.decode()


def test_the_page_shows_an_open_circuit_and_the_last_20_calls(store, manager):
    StoreConnection.objects.create(tenant=store, kind="webhook", url="https://orders.example/hook",
                                   failures_in_a_row=5, circuit_open_until=timezone.now() + timedelta(seconds=60))
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=store))
    for n in range(25):
        ActionCall.objects.create(tenant=store, conversation=conversation, action="order_status",
                                  params={"order_number": f"NW-{n:06d}"}, outcome="failed", detail="timeout",
                                  latency_ms=5000.0)
    html = client_of(manager).get("/console/orders/").content.decode()
    assert 'data-state="circuit-open"' in html and "calls are not tried" in html
    assert 'data-fact="failures">5<' in html
    assert html.count("data-call=") == 20
    assert "NW-000024" in html and "NW-000004" not in html  # newest first
    assert f'href="/console/review/{conversation.id}/"' in html and "5000 ms" in html


# --- disconnecting ---------------------------------------------------------------------------------------------


def test_disconnecting_forgets_the_connection_and_keeps_the_calls(store, manager, private_hosts, order_system):
    client = client_of(manager)
    connect(client, order_system)
    client.post("/console/orders/test/", {"tenant": "alpha", "order_number": "NW-482913"})
    assert client.get("/console/orders/disconnect/").status_code == 405  # a POST only
    response = client.post("/console/orders/disconnect/", {"tenant": "alpha"}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Disconnected Alpha Outdoor" in html and "No order system connected" in html
    assert not StoreConnection.objects.exists() and ActionCall.objects.count() == 1
    assert 'data-outcome="ok"' in html
    again = client.post("/console/orders/disconnect/", {"tenant": "alpha"}, follow=True)
    assert "had no order system connected" in again.content.decode()


def test_the_page_asks_before_disconnecting(store, manager):
    StoreConnection.objects.create(tenant=store, kind="webhook", url="https://orders.example/hook")
    html = client_of(manager).get("/console/orders/").content.decode()
    confirm = re.search(r'<details class="confirm">.*?</details>', html, re.S).group(0)
    assert 'action="/console/orders/disconnect/"' in confirm and "Disconnect Alpha Outdoor" in confirm
    assert 'name="csrfmiddlewaretoken"' in confirm


# --- review: filtering conversations by store action ------------------------------------------------------------


@pytest.fixture
def calls_world(store, manager):
    """Alpha's conversations: one whose look-up succeeded, one whose cancellation failed, one without calls; and
    bravo's with a failed look-up."""
    def conversation_with(tenant, *calls):
        conversation = ConversationFactory(visitor=VisitorFactory(tenant=tenant))
        for action, outcome in calls:
            ActionCall.objects.create(tenant=tenant, conversation=conversation, action=action, outcome=outcome)
        return conversation

    bravo = TenantFactory(slug="bravo")
    return {
        "looked_up": conversation_with(store, ("order_status", "ok")),
        "cancel_failed": conversation_with(store, ("order_status", "ok"), ("cancel_order", "failed")),
        "plain": conversation_with(store),
        "theirs": conversation_with(bravo, ("order_status", "failed")),
    }


def listed(client: Client, query: str) -> set[int]:
    response = client.get(f"/console/review/?{query}")
    assert response.status_code == 200, response.content[:500]
    return {row["c"]["id"] for row in response.context["rows"]}


@pytest.mark.parametrize("query, expected", [
    ("", {"looked_up", "cancel_failed", "plain"}),
    ("action=order_status", {"looked_up", "cancel_failed"}),
    ("action=cancel_order", {"cancel_failed"}),
    ("action_outcome=failed", {"cancel_failed"}),
    ("action_outcome=ok", {"looked_up", "cancel_failed"}),
    ("action=order_status&action_outcome=failed", set()),  # one call matching both
    ("action=cancel_order&action_outcome=failed", {"cancel_failed"}),
    ("action=start_return", set()),
])
def test_review_filters_conversations_by_their_store_actions(calls_world, manager, query, expected):
    assert listed(client_of(manager), query) == {calls_world[name].id for name in expected}


def test_the_action_filters_stay_in_the_page_and_the_export(calls_world, manager):
    client = client_of(manager)
    html = client.get("/console/review/?action=cancel_order&action_outcome=failed").content.decode()
    assert '<option value="cancel_order" selected>' in html and '<option value="failed" selected>' in html
    assert "action=cancel_order&amp;action_outcome=failed&amp;format=csv" in html
    exported = b"".join(client.get("/console/export/?format=jsonl&action_outcome=failed").streaming_content)
    assert [json.loads(line)["id"] for line in exported.splitlines()] == [calls_world["cancel_failed"].id]


@pytest.mark.parametrize("query, detail", [
    ("action=fly", "`action` must be one of order_status, cancel_order"),
    ("action_outcome=great", "`action_outcome` must be one of ok, needs"),
])
def test_an_action_filter_it_cannot_have_is_refused(calls_world, manager, query, detail):
    response = client_of(manager).get(f"/console/review/?{query}")
    assert response.status_code == 400 and detail in response.content.decode()


def test_the_filters_parse_the_action_parameters(calls_world, manager):
    filters = review.filters_from(manager, {"action": "cancel_order", "action_outcome": "failed"})
    assert (filters.action, filters.action_outcome) == ("cancel_order", "failed")
    assert filters.params() == {"action": "cancel_order", "action_outcome": "failed"} and filters.active


# --- insights: store actions per day ---------------------------------------------------------------------------

DAY = date(2025, 3, 3)
PERIOD = Period(DAY, DAY + timedelta(days=2))


def call_at(tenant, conversation, day: int, outcome: str, action: str = "order_status", hour: int = 10):
    call = ActionCall.objects.create(tenant=tenant, conversation=conversation, action=action, outcome=outcome)
    when = datetime.combine(DAY + timedelta(days=day), datetime.min.time(), tzinfo=dt_timezone.utc)
    ActionCall.objects.filter(pk=call.pk).update(created_at=when + timedelta(hours=hour))
    return call


def test_actions_per_day_count_outcomes_with_success_and_answered_rates(store):
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=store))
    for outcome in ("ok", "ok", "not_matched", "failed"):
        call_at(store, conversation, 0, outcome)
    call_at(store, conversation, 2, "needs", hour=23)
    call_at(store, conversation, 2, "limited", hour=0)
    call_at(store, None, 0, "ok")  # a test look-up from the Order system page: not a visitor's
    call_at(store, conversation, -1, "ok", hour=23)  # before the period
    call_at(store, conversation, 3, "ok", hour=0)  # after it
    call_at(TenantFactory(), None, 0, "failed")

    daily = insights.actions_daily(store.id, PERIOD)

    assert [r["day"] for r in daily] == PERIOD.days
    first, empty, last = daily
    assert {k: first[k] for k in ("calls", "ok", "not_matched", "needs", "failed", "limited", "answered",
                                  "failures")} == {"calls": 4, "ok": 2, "not_matched": 1, "needs": 0, "failed": 1,
                                                   "limited": 0, "answered": 3, "failures": 1}
    assert (first["success_rate"], first["answered_rate"]) == (0.5, 0.75)
    assert (empty["calls"], empty["success_rate"], empty["answered_rate"]) == (0, None, None)
    assert (last["calls"], last["needs"], last["limited"], last["success_rate"], last["answered_rate"]) == (
        2, 1, 1, 0.0, 0.5)
    summary = insights.actions_summary(daily)
    assert (summary["calls"], summary["ok"], summary["answered"], summary["failures"]) == (6, 2, 4, 2)
    assert (summary["success_rate"], summary["answered_rate"]) == (0.3333, 0.6667)


def test_the_insights_page_shows_store_actions_with_links_to_their_conversations(store, manager):
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=store))
    call_at(store, conversation, 0, "ok")
    call_at(store, conversation, 1, "failed")
    response = client_of(manager).get("/console/insights/", {"from": DAY.isoformat(), "to": "2025-03-05"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-chart="actions"' in html and "Store actions per day" in html
    assert "50% succeeded" in html and "50% answered" in html and "1 failure" in html
    data = response.context["data"]
    chart = data["charts"]["actions"]
    assert [d["label"] for d in chart["datasets"]] == ["OK", "Not matched", "Needs more", "Failed", "Limited"]
    assert chart["datasets"][0]["data"] == [1, 0, 0] and chart["datasets"][3]["data"] == [0, 1, 0]
    link = urlsplit(chart["datasets"][3]["links"][1])
    assert link.path == "/console/review/" and parse_qs(link.query) == {
        "store": ["alpha"], "action_outcome": ["failed"], "date_from": ["2025-03-04"], "date_to": ["2025-03-04"]}
    assert {o["outcome"]: o["calls"] for o in data["actions"]["outcomes"]} == {
        "ok": 1, "not_matched": 0, "needs": 0, "failed": 1, "limited": 0}


def test_the_insights_page_says_when_there_were_no_store_actions(store, manager):
    html = client_of(manager).get("/console/insights/").content.decode()
    assert "No store actions in this period." in html


# --- the admin -------------------------------------------------------------------------------------------------


@pytest.fixture
def root() -> Client:
    return client_of(UserFactory(is_staff=True, is_superuser=True))


def test_the_admin_lists_connections_without_their_credentials(root, store, private_hosts, order_system):
    from chatbot.actions import services

    connection, held = services.store_connect(store, "webhook", order_system.url, {"secret": MY_SECRET},
                                              intent_actions={"track_order": "order_status"})
    sealed = StoreConnection.objects.get().credentials
    listing = root.get("/admin/chatbot/storeconnection/")
    change = root.get(f"/admin/chatbot/storeconnection/{connection.id}/change/")
    assert listing.status_code == change.status_code == 200
    for html in (listing.content.decode(), change.content.decode()):
        assert MY_SECRET not in html and sealed not in html and "credentials" not in html.lower()
    assert 'name="is_active"' in change.content.decode() and 'name="url"' not in change.content.decode()
    assert root.get("/admin/chatbot/storeconnection/add/").status_code == 403


def test_the_admin_shows_calls_read_only_with_filters(root, store):
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=store))
    call = ActionCall.objects.create(tenant=store, conversation=conversation, action="cancel_order",
                                     params={"order_number": "NW-1", "email": "j***@example.com"}, outcome="failed",
                                     detail="status 502", latency_ms=12.5)
    listing = root.get("/admin/chatbot/actioncall/?outcome=failed&action=cancel_order")
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    html = listing.content.decode()
    assert "status 502" in html and "?action=order_status" not in html  # only the actions present are offered
    assert root.get(f"/admin/chatbot/actioncall/?tenant__id__exact={store.id}").context["cl"].result_count == 1
    assert root.get("/admin/chatbot/actioncall/?outcome=ok").context["cl"].result_count == 0
    change = root.get(f"/admin/chatbot/actioncall/{call.id}/change/")
    assert change.status_code == 200 and "j***@example.com" in change.content.decode()
    assert 'name="outcome"' not in change.content.decode()  # shown, not a form field
    assert root.get("/admin/chatbot/actioncall/add/").status_code == 403
    assert root.post(f"/admin/chatbot/actioncall/{call.id}/change/", {"outcome": "ok"}).status_code == 403
    assert root.post(f"/admin/chatbot/actioncall/{call.id}/delete/", {"post": "yes"}).status_code == 403
    assert ActionCall.objects.get().outcome == "failed"


def test_staff_of_one_store_sees_only_its_calls_and_connections(store):
    from django.contrib.auth.models import Permission

    other = TenantFactory()
    StoreConnection.objects.create(tenant=other, kind="webhook", url="https://other.example/hook")
    ActionCall.objects.create(tenant=other, action="order_status", outcome="ok")
    ActionCall.objects.create(tenant=store, action="order_status", outcome="ok")
    staff = agent_of(store, role="manager", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_actioncall", "view_storeconnection"]))
    client = client_of(staff)
    assert client.get("/admin/chatbot/actioncall/").context["cl"].result_count == 1
    assert client.get("/admin/chatbot/storeconnection/").context["cl"].result_count == 0


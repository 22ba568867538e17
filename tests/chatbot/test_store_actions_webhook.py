"""The store actions webhook against a real HTTP server: the signed request, every failure kind, the circuit
breaker, idempotent writes, encrypted credentials and the SSRF refusals."""
import hashlib
import hmac
import io
import time

import pytest
from django.core.management import call_command

from chatbot.actions import outbound, services
from chatbot.actions.connectors.base import ActionRequest
from chatbot.actions.credentials import CredentialsUnreadable, credentials_open
from chatbot.errors import InvalidField
from chatbot.models import ActionCall, StoreConnection
from tests.factories import TenantFactory
from tests.order_server import OrderServer

pytestmark = pytest.mark.django_db

ORDER = {"order_number": "NW-482913", "state": "in_transit", "carrier": "DHL", "tracking_number": "JD01",
         "tracking_url": "https://www.dhl.com/track?id=JD01", "estimated_delivery": "2026-12-09",
         "placed_at": "2026-12-01T10:00:00Z", "items": [{"name": "Trail Jacket", "quantity": 1}], "secret_note": "x"}


@pytest.fixture
def private_hosts(settings):
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = True
    return settings


@pytest.fixture
def server():
    running = OrderServer(answer=lambda seen: (200, {"status": "ok", "data": ORDER}, {})).start()
    yield running
    running.stop()


def request(action="order_status", number="NW-482913", key="") -> ActionRequest:
    return ActionRequest(action, "shop", 7, "en", {"order_number": number, "email": "anna@example.com"},
                         {"id": None, "verified": False, "email": None}, key)


def connect(server, **options) -> StoreConnection:
    tenant = TenantFactory(slug="shop")
    connection, _ = services.store_connect(tenant, "webhook", server.url + "/orders", **options)
    return connection


def test_connect_store_prints_the_secret_last_and_signs_every_request_with_it(private_hosts, server):
    TenantFactory(slug="shop")
    out = io.StringIO()
    call_command("connect_store", "shop", "webhook", "--url", server.url + "/orders", "--map",
                 "track_order=order_status", "--order-pattern", r"NW-\d{6}", stdout=out)
    secret = out.getvalue().strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    connection = StoreConnection.objects.get(tenant__slug="shop")
    assert secret not in connection.credentials  # encrypted at rest
    assert credentials_open(connection.credentials) == {"secret": secret}

    result, _ = services.action_run(connection, request())
    assert result.status == "ok"
    seen = server.seen[-1]
    assert seen.method == "POST" and seen.path == "/orders"
    assert seen.headers["content-type"] == "application/json"
    signed = seen.headers["x-chatbot-timestamp"].encode() + b"." + seen.body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert seen.headers["x-chatbot-signature"] == expected
    assert abs(int(seen.headers["x-chatbot-timestamp"]) - time.time()) < 5
    assert seen.json == {"action": "order_status", "tenant": "shop", "conversation": 7, "language": "en",
                         "params": {"order_number": "NW-482913", "email": "anna@example.com"},
                         "visitor": {"id": None, "verified": False, "email": None}}


def test_an_ok_answer_keeps_the_documented_fields_only_and_the_call_is_audited_masked(private_hosts, server):
    connection = connect(server)
    result, latency = services.action_run(connection, request(), conversation_id=None)
    assert result.data == {"order_number": "NW-482913", "state": "in_transit", "carrier": "DHL",
                           "tracking_number": "JD01", "tracking_url": "https://www.dhl.com/track?id=JD01",
                           "estimated_delivery": "2026-12-09", "placed_at": "2026-12-01",
                           "items": [{"name": "Trail Jacket", "quantity": 1}]}
    call = ActionCall.objects.get()
    assert (call.action, call.outcome, call.params) == ("order_status", "ok",
                                                        {"order_number": "NW-482913", "email": "a***@example.com"})
    assert call.latency_ms == latency and latency > 0


@pytest.mark.parametrize("answer, detail", [
    ((500, {"status": "ok"}, {}), "status 500"),
    ((200, b"<html>oops</html>", {}), "bad json"),
    ((200, {"status": "maybe"}, {}), "bad answer: status 'maybe'"),
    ((200, {"status": "ok", "data": {"order_number": "NW-482913", "state": "lost"}}, {}),
     "bad answer: no order state, or another order"),
    ((200, {"status": "ok", "data": {**ORDER, "order_number": "NW-000001"}}, {}),
     "bad answer: no order state, or another order"),
    ((200, {"status": "needs", "params": ["password"]}, {}), "bad answer: needs names no known parameter"),
    ((302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}), "refused"),
    ((200, b"[" + b"1," * 200_000 + b"1]", {}), "too_large"),
])
def test_every_kind_of_bad_answer_is_a_failure_recorded_with_its_reason(private_hosts, server, answer, detail):
    server.answer = lambda seen: answer
    result, _ = services.action_run(connect(server), request())
    assert (result.status, result.detail) == ("failed", detail)
    assert ActionCall.objects.get().detail == detail


def test_not_found_forbidden_and_needs_are_answers(private_hosts, server):
    connection = connect(server)
    for answer, status in (({"status": "not_found"}, "not_found"), ({"status": "forbidden"}, "forbidden"),
                           ({"status": "needs", "params": ["email"]}, "needs")):
        server.answer = lambda seen, answer=answer: (200, answer, {})
        assert services.action_run(connection, request())[0].status == status
    assert list(ActionCall.objects.order_by("id").values_list("outcome", "detail")) == [
        ("not_matched", "not_found"), ("not_matched", "forbidden"), ("needs", "needs email")]


def test_a_webhook_that_hangs_is_a_timeout_within_the_connections_timeout(private_hosts, server):
    server.delay = 3
    started = time.monotonic()
    result, _ = services.action_run(connect(server, timeout=1), request())
    assert (result.status, result.detail) == ("failed", "timeout")
    assert time.monotonic() - started < 1.6


def test_a_closed_port_is_a_connection_failure(private_hosts, server):
    connection = connect(server)
    server.stop()
    result, _ = services.action_run(connection, request())
    assert (result.status, result.detail) == ("failed", "connection")
    server.start()  # the fixture stops it again


def test_failures_in_a_row_open_the_circuit_and_calls_stop_reaching_the_store(private_hosts, server, settings):
    settings.ACTIONS_CIRCUIT_FAILURES = 2
    server.answer = lambda seen: (503, b"", {})
    connection = connect(server)
    for _ in range(2):
        services.action_run(connection, request())
    assert len(server.seen) == 2
    result, _ = services.action_run(connection, request())
    assert (result.status, result.detail) == ("failed", "circuit open")
    assert len(server.seen) == 2  # not called
    StoreConnection.objects.filter(pk=connection.pk).update(circuit_open_until=None)
    connection.refresh_from_db()
    server.answer = lambda seen: (200, {"status": "ok", "data": ORDER}, {})
    assert services.action_run(connection, request())[0].status == "ok"
    connection.refresh_from_db()
    assert connection.failures_in_a_row == 0


def test_a_write_retried_with_its_idempotency_key_happens_once(private_hosts, server):
    server.answer = lambda seen: (200, {"status": "ok", "data": {**ORDER, "state": "cancelled"}}, {})
    connection = connect(server)
    first, _ = services.action_run(connection, request("cancel_order", key="k-1"))
    again, _ = services.action_run(connection, request("cancel_order", key="k-1"))
    assert first.data == again.data and again.data["state"] == "cancelled"
    assert len(server.seen) == 1
    assert server.seen[0].headers["idempotency-key"] == "k-1"


def test_credentials_survive_a_key_rotation_and_an_unknown_key_is_a_clear_failure(private_hosts, server, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ACTIONS_ENCRYPTION_KEYS = [old]
    connection = connect(server)
    settings.ACTIONS_ENCRYPTION_KEYS = [new, old]
    assert credentials_open(connection.credentials)["secret"].startswith("whsec_")
    settings.ACTIONS_ENCRYPTION_KEYS = [new]
    with pytest.raises(CredentialsUnreadable):
        credentials_open(connection.credentials)
    result, _ = services.action_run(connection, request())
    assert (result.status, result.detail) == ("failed", "credentials unreadable")


# --- outbound safety -------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "::ffff:169.254.169.254"])
def test_private_loopback_link_local_and_metadata_addresses_are_not_public(address):
    assert not outbound.address_public(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are(address):
    assert outbound.address_public(address)


@pytest.mark.parametrize("url, why", [
    ("http://shop.example/orders", "Only https"),
    ("ftp://shop.example/orders", "Only https"),
    ("https://user:pw@shop.example/orders", "credentials"),
    ("https:///orders", "no host"),
    ("https://localhost/orders", "private or reserved"),
    ("https://127.0.0.1:8443/orders", "private or reserved"),
    ("https://169.254.169.254/latest/meta-data/", "private or reserved"),
    ("https://[::1]/orders", "private or reserved"),
])
def test_without_the_development_flag_only_https_to_public_addresses_is_called(url, why):
    tenant = TenantFactory()
    with pytest.raises(InvalidField, match=why) as refused:
        services.store_connect(tenant, "webhook", url)
    assert refused.value.field == "url"
    assert not StoreConnection.objects.exists()


def test_a_store_whose_name_resolves_to_a_private_address_later_is_refused_at_call_time(settings, server):
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = True
    connection = connect(server)
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = False  # e.g. its DNS now answers 127.0.0.1
    result, _ = services.action_run(connection, request())
    assert (result.status, result.detail) == ("failed", "refused")
    assert server.seen == []


def test_a_redirect_to_another_host_is_refused_even_with_private_hosts_allowed(private_hosts, server):
    server.answer = lambda seen: (307, b"", {"Location": "http://localhost:1/elsewhere"})
    result, _ = services.action_run(connect(server), request())
    assert (result.status, result.detail) == ("failed", "refused")


def test_a_redirect_on_the_same_host_is_followed(private_hosts, server):
    server.answer = lambda seen: ((200, {"status": "ok", "data": ORDER}, {}) if seen.path == "/v2"
                                  else (308, b"", {"Location": "/v2"}))
    result, _ = services.action_run(connect(server), request())
    assert result.status == "ok"
    assert [s.path for s in server.seen] == ["/orders", "/v2"]
    assert server.seen[1].method == "POST" and server.seen[1].body == server.seen[0].body


def test_connections_are_not_reused(private_hosts, server):
    connection = connect(server)
    for _ in range(3):
        services.action_run(connection, request())
    assert {s.headers.get("connection") for s in server.seen} == {"close"}


def test_disconnect_forgets_the_credentials_and_keeps_the_audit(private_hosts, server):
    connection = connect(server)
    services.action_run(connection, request())
    out = io.StringIO()
    call_command("disconnect_store", "shop", stdout=out)
    assert not StoreConnection.objects.exists()
    assert ActionCall.objects.count() == 1


def test_a_server_that_trickles_its_answer_is_cut_at_the_deadline(private_hosts):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)

    def trickle():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            try:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 200:
                    conn.send(bytes([byte]))
                    time.sleep(0.2)
            except OSError:
                pass
            conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    tenant = TenantFactory(slug="shop")
    connection, _ = services.store_connect(tenant, "webhook", f"http://127.0.0.1:{listener.getsockname()[1]}/",
                                           timeout=1)
    started = time.monotonic()
    result, _ = services.action_run(connection, request())
    took = time.monotonic() - started
    listener.close()
    assert (result.status, result.detail) == ("failed", "timeout")
    assert took < 1.5


def test_connecting_again_keeps_the_secret_on_the_same_host_only(private_hosts, server):
    TenantFactory(slug="shop")

    def connect_secret(url: str, *extra: str) -> str:
        out = io.StringIO()
        call_command("connect_store", "shop", "webhook", "--url", url, *extra, stdout=out)
        return out.getvalue().strip().splitlines()[-1]

    first = connect_secret(server.url + "/orders")
    assert connect_secret(server.url + "/v2/orders", "--timeout", "3") == first  # same host: the endpoint still checks it
    assert connect_secret(server.url.replace("127.0.0.1", "localhost") + "/orders") != first  # another host: never sent there
    assert connect_secret(server.url + "/orders", "--secret", "whsec_mine") == "whsec_mine"


def test_a_too_long_address_and_foreign_credential_names_are_refused_or_dropped(private_hosts, server):
    tenant = TenantFactory(slug="shop")
    with pytest.raises(InvalidField, match="longer than 500"):
        services.store_connect(tenant, "webhook", server.url + "/" + "x" * 600)
    connection, held = services.store_connect(tenant, "webhook", f"  {server.url}/orders  ",
                                              {"secret": "whsec_a", "token": "stray"})
    assert held == {"secret": "whsec_a"} and connection.url == server.url + "/orders"


def test_a_shopify_connection_must_be_at_the_shops_myshopify_address():
    with pytest.raises(InvalidField, match="myshopify.com address") as refused:
        services.store_connect(TenantFactory(), "shopify", "https://shop.northwind.example", {"token": "shpat_x"})
    assert refused.value.field == "url"

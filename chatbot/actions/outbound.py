"""The platform's one way out to a store's systems, guarded against server-side request forgery.

A store names the address of its order system; the bot then makes requests to it from inside our network.
So every request (and every redirect) is checked: `https` only, to the hosts the store configured, and
every address the name resolves to must be a public one: loopback, private, link-local (cloud metadata
169.254.169.254 among them), carrier-grade NAT, multicast and reserved addresses are refused. The request
then goes to the address that was checked (a second lookup could answer otherwise), with the certificate
checked against the name. Answers are read up to ACTIONS_MAX_RESPONSE_BYTES within one deadline, and a
connection is closed after its request, so none is ever shared between stores.

ACTIONS_ALLOW_PRIVATE_HOSTS (development and tests only) lets plain `http` and private addresses through.
"""
import functools
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as LookupTimeout
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

REDIRECTS = 3


class OutboundError(Exception):
    """A request that did not get an answer; `kind` says why in a word (timeout, refused, connection...)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Refused(OutboundError):
    """The address is not one the platform may call."""

    def __init__(self, message: str):
        super().__init__("refused", message)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict


def url_check(url: str, hosts: set[str] | None = None) -> tuple[str, str, int]:
    """(scheme, host, port) of `url` when the platform may call it (before resolving it); else Refused.

    `hosts`: the host names the store configured (None: this URL's own, as when a store is connected)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"Not an address: {url!r}.") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    allow_private = settings.ACTIONS_ALLOW_PRIVATE_HOSTS
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise Refused("Only https addresses can be called" + (
            "." if allow_private else "; plain http is for development (ACTIONS_ALLOW_PRIVATE_HOSTS)."))
    if not host:
        raise Refused(f"The address {url!r} names no host.")
    if parts.username or parts.password:
        raise Refused("Put credentials in the connection's credentials, not in its address.")
    if hosts is not None and host not in hosts:
        raise Refused(f"{host} is not a host this store configured.")
    return scheme, host, port or (443 if scheme == "https" else 80)


def address_public(address: str) -> bool:
    """Whether the platform may connect to this IP address without ACTIONS_ALLOW_PRIVATE_HOSTS."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


# Name lookups run here, so a resolver that hangs costs the caller no more than its deadline.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbound-dns")


def resolve(host: str, port: int, timeout: float = 5.0) -> str:
    """The address to connect to: every address `host` resolves to must be public (else Refused)."""
    try:
        infos = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM).result(timeout)
    except LookupTimeout as exc:
        raise OutboundError("timeout", f"{host} was not resolved in time.") from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError("dns", f"{host} could not be resolved.") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise OutboundError("dns", f"{host} could not be resolved.")
    if not settings.ACTIONS_ALLOW_PRIVATE_HOSTS:
        for address in addresses:
            if not address_public(address):
                raise Refused(f"{host} resolves to {address}, a private or reserved address.")
    return addresses[0]


def request(method: str, url: str, *, hosts: set[str], timeout: float, headers: dict | None = None,
            body: bytes | None = None) -> Response:
    """One request to an allowed host, following at most REDIRECTS redirects to allowed hosts, all within
    `timeout` seconds; OutboundError (Refused among them) when there is no answer to give."""
    deadline = time.monotonic() + timeout
    for _ in range(REDIRECTS + 1):
        response = _once(method, url, hosts, deadline, headers or {}, body)
        location = response.headers.get("location")
        if response.status not in (301, 302, 303, 307, 308) or not location:
            return response
        url = urljoin(url, location)
        if response.status not in (307, 308):
            method, body = "GET", None
    raise OutboundError("redirects", f"More than {REDIRECTS} redirects.")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundError("timeout", "No answer in time.")
    return left


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once per process (loading them takes ~25 ms); a context is
    shared safely by connections, and holds no state of one store's."""
    return ssl.create_default_context()


class _Connection(http.client.HTTPSConnection):
    """A connection to the checked `address`, its certificate checked against the host name (SNI too)."""

    def __init__(self, host: str, address: str, port: int, timeout: float, tls: bool):
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self.address, self.tls = address, tls

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host) if self.tls else sock


def _once(method: str, url: str, hosts: set[str], deadline: float, headers: dict, body: bytes | None) -> Response:
    scheme, host, port = url_check(url, hosts)
    address = resolve(host, port, _remaining(deadline))
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    sent = {**headers, "Host": host if default_port else f"{host}:{port}", "Connection": "close"}
    limit = settings.ACTIONS_MAX_RESPONSE_BYTES
    connection = _Connection(host, address, port, _remaining(deadline), scheme == "https")
    # The deadline bounds the whole exchange, however slowly a server trickles its headers or body: when it
    # passes, the socket is shut and the blocked read ends.
    watchdog = threading.Timer(_remaining(deadline), _shut, (connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(method, path, body=body, headers={**sent, "Accept-Encoding": "identity"},
                           encode_chunked=False)
        response = connection.getresponse()
        chunks, size = [], 0
        while True:
            _remaining(deadline)
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise OutboundError("too_large", f"The answer is larger than {limit} bytes.")
            chunks.append(chunk)
        _remaining(deadline)
        return Response(response.status, b"".join(chunks), {k.lower(): v for k, v in response.getheaders()})
    except OutboundError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            raise OutboundError("timeout", "No answer in time.") from exc
        if isinstance(exc, ssl.SSLError):
            raise OutboundError("tls", f"The TLS connection to {host} failed: {exc.reason or exc}.") from exc
        raise OutboundError("connection", f"Could not reach {host}: {type(exc).__name__}.") from exc
    finally:
        watchdog.cancel()
        connection.close()


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

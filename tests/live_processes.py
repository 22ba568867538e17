"""Real processes for delivery and fault tests: daphne, Celery workers and beat, a Redis of their own
(tests.processes, shared with the benches), a TCP proxy in front of PostgreSQL that can be cut like a
database restart, and a widget client. Loopback only; every wait is bounded."""
import asyncio
import json
import socket
import threading
import time
import uuid

import pytest
import websockets
from django.db import connection

from chatbot.models import Message
from tests.factories import KnowledgeEntryFactory, TenantFactory
from tests.processes import Beat, Daphne, RedisServer, Worker, free_port, wait_until  # noqa: F401 - the tests' import

ORIGIN = "https://shop.example"

# Fast delivery settings for fault tests: heartbeats, the sweep and its thresholds in seconds.
FAST_DELIVERY = {
    "ANSWER_HEARTBEAT_SECONDS": "0.5",
    "ANSWER_STUCK_SECONDS": "2",
    "ANSWER_QUEUED_STUCK_SECONDS": "3",
    "ANSWER_RESEND_SECONDS": "2",
    "ANSWER_SWEEP_SECONDS": "1",
}


def own_env(process_env: dict, **overrides) -> dict:
    """process_env with a queue and channel prefix of this test's own, and the fast delivery settings."""
    tag = uuid.uuid4().hex[:8]
    env = dict(process_env)
    env.update(FAST_DELIVERY)
    env.update(CELERY_QUEUE=f"faults-{tag}", CHANNELS_PREFIX=f"faults-{tag}", LOG_LEVEL="INFO")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class TcpProxy:
    """A loopback TCP proxy; `cut()` drops every connection and refuses new ones (accepted and closed
    at once, as a restarting server does) until `restore()`."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            live = list(self._sockets)
        for sock in live:
            self._close(sock)

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._listener.close()
        self._thread.join(timeout=5)


def database_url_via(test_database_url: str, port: int) -> str:
    """The test database's URL with its host and port replaced by the proxy's."""
    scheme, rest = test_database_url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    name = location.split("/", 1)[1]
    return f"{scheme}://{credentials}@127.0.0.1:{port}/{name}"


class WidgetClient:
    """The widget's side of the protocol, as widget.js does it: an outbox of client_ids sent again on
    reconnect (and after transient errors), a resume from the highest seq seen on every new socket.

    `seen` holds every message the client was shown, by id (the widget shows each id once, in seq
    order); `errors` the error frames; `closes` the close codes of the sockets it lost.
    """

    def __init__(self, url_of, key: str):
        self.url_of, self.key = url_of, key  # url_of(key, visitor) -> the widget socket URL of the server now
        self.visitor = ""
        self.ws = None
        self.seen: dict[int, dict] = {}
        self.errors: list[dict] = []
        self.closes: list[int | None] = []
        self.acks: dict[str, dict] = {}

    @property
    def watermark(self) -> int:
        return max((m["seq"] for m in self.seen.values()), default=0)

    def _show(self, message: dict) -> None:
        self.seen[message["id"]] = message

    async def connect(self, timeout: float = 60) -> dict:
        """Connect (retrying with a short back-off while the server is away), then resume."""
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            try:
                ws = await websockets.connect(self.url_of(self.key, self.visitor), origin=ORIGIN, open_timeout=5)
                session = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if session.get("type") == "session":
                    break
                self.errors.append(session)
                await ws.close()
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
                self.closes.append(getattr(getattr(exc, "rcvd", None), "code", None))
            if time.monotonic() > deadline:
                raise AssertionError(f"could not reconnect within {timeout} s; errors {self.errors[-3:]}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.ws = ws
        self.visitor = session["visitor"]
        watermark = self.watermark
        for message in session.get("messages", []):
            self._show(message)
        if watermark:
            await ws.send(json.dumps({"type": "resume", "after_seq": watermark}))
        return session

    async def frame(self, timeout: float) -> dict:
        """The next frame, recorded; raises ConnectionClosed when the socket went away."""
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if frame["type"] == "message":
            self._show(frame["message"])
        elif frame["type"] == "ack":
            self.acks[frame["client_id"]] = frame["message"]
            self._show(frame["message"])
        elif frame["type"] == "error":
            self.errors.append(frame)
        return frame

    async def send(self, text: str, client_id: str, timeout: float = 60) -> dict:
        """Send until acked: again after a transient error or on a new socket (same client_id)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.ws.send(json.dumps({"type": "message", "text": text, "client_id": client_id}))
                while True:
                    frame = await self.frame(max(deadline - time.monotonic(), 0.1))
                    if frame["type"] == "ack" and frame["client_id"] == client_id:
                        return frame["message"]
                    if frame["type"] == "error" and frame.get("client_id") == client_id:
                        if frame["code"] not in ("unavailable", "rate_limited"):
                            raise AssertionError(f"message refused for good: {frame}")
                        await asyncio.sleep(0.5)
                        break
            except websockets.exceptions.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
                await self.connect(max(deadline - time.monotonic(), 1))
        raise AssertionError(f"{client_id} not acked within {timeout} s; errors {self.errors[-3:]}")

    async def wait_seen(self, message_id: int, timeout: float) -> dict:
        """Read frames (reconnecting and resuming when the socket goes) until message `message_id` is shown."""
        deadline = time.monotonic() + timeout
        while message_id not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"message {message_id} not shown within {timeout} s")
            try:
                await self.frame(left)
            except asyncio.TimeoutError:
                continue
            except websockets.exceptions.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
                await self.connect(max(deadline - time.monotonic(), 1))
        return self.seen[message_id]

    async def drain(self, quiet: float = 1.0) -> None:
        try:
            while True:
                await self.frame(quiet)
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            pass

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    def check_in_order_without_gaps(self) -> list[int]:
        """The seqs shown: 1..N, each once."""
        seqs = sorted(m["seq"] for m in self.seen.values())
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        return seqs


# --- fixtures and helpers of the live delivery and fault tests ------------------------------------

SHIPPING = "Standard shipping takes 3 to 5 business days."
RETURNS = "You can return unused items within 30 days."


@pytest.fixture
def shop(db):
    tenant = TenantFactory(allowed_origins=[ORIGIN])
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?", answer=SHIPPING)
    KnowledgeEntryFactory(tenant=tenant, question="What is your return policy?", answer=RETURNS)
    KnowledgeEntryFactory(tenant=tenant, question="Which payment methods do you accept?",
                          answer="We accept Visa, Mastercard and PayPal.")
    return tenant


class Stack:
    """Processes of one test, against a Redis of its own; `start` registers them to be stopped."""

    def __init__(self, process_env: dict, log_dir):
        self.started = []
        self.redis = self.start(RedisServer(log_dir))
        self.env = own_env(process_env, REDIS_URL=self.redis.url)

    def start(self, process):
        if process not in self.started:
            self.started.append(process)
        return process.start()

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()
        for process in self.started:
            if "Traceback" in process.text():
                print(f"--- {process.name} log ---\n{process.text()[-4000:]}")


@pytest.fixture
def stack(process_env, tmp_path):
    stack = Stack(process_env, tmp_path)
    yield stack
    stack.stop()


async def in_db(function, *args):
    """`function(*args)` in a thread of its own, which closes its database connection after."""
    def run():
        try:
            return function(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


def reply_in_db(message_id: int, timeout: float = 60) -> Message:
    return wait_until(lambda: Message.objects.filter(reply_to_id=message_id).exclude(sender="visitor").first(),
                      timeout, f"a reply to message {message_id}", interval=0.2)



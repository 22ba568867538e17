"""Helpers for tests that drive the agent and widget sockets through `chatbot.asgi.application`."""
import asyncio

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from chatbot.asgi import application

WIDGET_ORIGIN = "https://shop.example"
# The agent socket accepts its own host only (AllowedHostsOriginValidator over ALLOWED_HOSTS).
CONSOLE_ORIGIN = "http://localhost"


def session_cookie(user) -> str:
    """The session id of a real login of `user` (as /accounts/login/ would leave it)."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def agent_connect(user=None, origin: str = CONSOLE_ORIGIN) -> WebsocketCommunicator:
    """A connected `/ws/agent/` socket, logged in as `user` (anonymous when None); nothing read yet."""
    headers = [(b"origin", origin.encode())]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    comm = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def agent_socket(user) -> tuple[WebsocketCommunicator, dict]:
    """A logged-in agent socket and its first frame (the inbox)."""
    comm = await agent_connect(user)
    inbox = await comm.receive_json_from(timeout=5)
    assert inbox["type"] == "inbox", inbox
    return comm, inbox


async def widget_socket(tenant, visitor: str = "") -> tuple[WebsocketCommunicator, dict]:
    """A widget socket of `tenant` and its session frame. Without `visitor`: of a new visitor whose
    conversation exists (a connect creates nothing, her first message would; started here instead)."""
    if not visitor:
        from chatbot.conversations import services

        visitor = (await database_sync_to_async(services.visitor_session_open)(tenant, None)).visitor.token
    path = f"/ws/widget/?key={tenant.public_key}" + (f"&visitor={visitor}" if visitor else "")
    comm = WebsocketCommunicator(application, path, headers=[(b"origin", WIDGET_ORIGIN.encode())])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    session = await comm.receive_json_from(timeout=5)
    assert session["type"] == "session", session
    return comm, session


async def frames_until(comm: WebsocketCommunicator, predicate, timeout: float = 5) -> list[dict]:
    """Frames received up to and including the first one `predicate` accepts (fails after `timeout`)."""
    seen: list[dict] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no matching frame within {timeout} s; got {seen}")
        try:
            frame = await comm.receive_json_from(timeout=left)
        except asyncio.TimeoutError:
            raise AssertionError(f"no matching frame within {timeout} s; got {seen}") from None
        seen.append(frame)
        if predicate(frame):
            return seen


async def frame_where(comm: WebsocketCommunicator, timeout: float = 5, **fields) -> dict:
    """The first frame whose top-level fields equal `fields` (earlier frames are skipped)."""
    frames = await frames_until(comm, lambda f: all(f.get(k) == v for k, v in fields.items()), timeout)
    return frames[-1]


async def drain(comm: WebsocketCommunicator, quiet: float = 0.3) -> list[dict]:
    """Every frame that arrives until the socket has been quiet for `quiet` seconds."""
    frames = []
    while not await comm.receive_nothing(timeout=quiet):
        frames.append(await comm.receive_json_from(timeout=1))
    return frames

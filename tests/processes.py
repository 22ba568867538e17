"""Real processes on loopback: daphne, Celery workers and beat, a Redis of their own. The live tests and the
benches (bench/chaos.py, bench/load.py, bench/inbox.py) start them from here; it imports neither Django nor
pytest, so a bench can start processes before (or without) configuring Django. Every wait is bounded."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """The first true value of `condition()`, polled every `interval` s; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Process:
    """A child process in a session of its own (so kill -9 reaches it alone, or with `group` its children,
    and stop() its children), logging to a file of its own in `log_dir`.

    `launch()` starts it and returns at once (a chaos bench restarting a killed worker must not block);
    `start()` launches it and waits, `start_timeout` s at most unless told, until `ready()`, which a
    subclass defines."""

    start_timeout: float = 60

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log = Path(log_dir) / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None

    def launch(self) -> "Process":
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def ready(self) -> bool:
        return True

    def wait_ready(self, timeout: float) -> "Process":
        """Wait until ready; RuntimeError with the log's tail when it exited instead."""
        wait_until(lambda: self.ready() or not self.alive(), timeout, f"{self.name} to be ready")
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.text()[-3000:]}")
        return self

    def start(self, timeout: float | None = None) -> "Process":
        return self.launch().wait_ready(timeout or self.start_timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self, group: bool = False) -> None:
        """SIGKILL the process itself (a crash, an OOM kill), or with `group` its children too."""
        try:
            if group:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """Terminate it (killed after `timeout` s), then whatever of its session is left."""
        if self.proc is None or self.proc.poll() is not None:
            self._reap_group()
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reap_group()

    def _reap_group(self) -> None:
        try:  # children left behind (a prefork pool whose parent was killed)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            pass

    def children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]


class Daphne(Process):
    """The ASGI server on a loopback port (a free one unless given: a restart keeps its port)."""

    def __init__(self, env: dict, log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        super().__init__("daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                                    "chatbot.asgi:application"], env, log_dir)

    def ready(self) -> bool:
        return port_open(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def widget_url(self, key: str, visitor: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/ws/widget/?key={key}" + (f"&visitor={visitor}" if visitor else "")


class Worker(Process):
    """A Celery worker; ready once its log says so (again, after a restart)."""

    start_timeout = 120

    def __init__(self, env: dict, log_dir: Path, pool: str = "solo", name: str = "worker",
                 queues: tuple[str, ...] = ("CELERY_QUEUE",)):
        """`queues` names the environment variables that hold the queues it takes (answers by default)."""
        self.hostname = f"{name}-{uuid.uuid4().hex[:6]}@%h"
        args = [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-P", pool,
                "-Q", ",".join(env[q] for q in queues),
                "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", self.hostname]
        if pool == "prefork":
            args += ["-c", "1"]
        super().__init__(name, args, env, log_dir)
        self._ready_at = 0

    def launch(self) -> "Worker":
        self._ready_at = self.text().count(" ready.")
        super().launch()
        return self

    def ready(self) -> bool:
        return self.text().count(" ready.") > self._ready_at


class Beat(Process):
    """Celery beat, ticking every second, with a schedule file of its own."""

    def __init__(self, env: dict, log_dir: Path):
        super().__init__("beat", [sys.executable, "-m", "celery", "-A", "chatbot", "beat", "-l", "info",
                                  "--max-interval", "1", "-s", str(Path(log_dir) / f"beat-{uuid.uuid4().hex[:6]}")],
                         env, log_dir)


class RedisServer(Process):
    """A Redis of the caller's own, without persistence: a restart loses everything, like a crashed one."""

    start_timeout = 20

    def __init__(self, log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        super().__init__("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"], os.environ.copy(), log_dir)

    def ready(self) -> bool:
        return port_open(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

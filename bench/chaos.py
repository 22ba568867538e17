"""Chaos benchmark: visitor messages answered while workers are killed and the web process restarted.

    .venv/bin/python bench/chaos.py [--messages 1000] [--visitors 20] [--quick] [--kill-every 5]
        [--web-every 20] [--timeout 1200]

Starts, on free loopback ports, a daphne, 2 Celery workers (prefork pool, one child each) and beat,
against a database of its own (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/chaos: created
if missing, migrated, its old rows kept) and Redis db 13 (REDIS_URL; a queue and channel prefix of the
run's own). --visitors widget sockets send --messages visitor messages in all (--quick: 100), each
visitor waiting for the reply to one before the next, as people do; a socket that goes is reconnected
with back-off, resumed from the highest seq seen, and an unacked message is sent again with the same
client_id, as widget.js does. Meanwhile, every --kill-every seconds a worker is killed with SIGKILL,
preferably one that is answering, alternately its pool child (the parent rejects the task back to the
queue) and the whole worker with its child (its task stays unacked in Redis; the sweep queues the message
again), and restarted; every
--web-every seconds the web process is killed with SIGKILL and started again on the same port.

After the last message, it waits (up to --drain seconds) until every visitor message the bot held has
a reply, then every client reconnects and resumes once more, and it counts, per visitor message:
- lost: no reply in the database (reply_to), or a reply its client never saw;
- duplicated: more than one reply in the database, or more than one reply id seen by its client;
- failed: answered with the "bot unavailable" notice (retries or attempts used up);
and reports the answer latency (ack to reply frame), the attempts, kills and restarts.
Loopback only, bounded in count and time. Progress goes to stderr; the last line of stdout is one JSON object.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.django_env import PROCESS_ENV, database_prepare, django_setup  # noqa: E402
from tests.processes import Beat, Daphne, Worker  # noqa: E402

KNOWLEDGE = [
    ("How long does shipping take?", "Standard shipping takes 3 to 5 business days."),
    ("What is your return policy?", "You can return unused items within 30 days."),
    ("Which payment methods do you accept?", "We accept Visa, Mastercard and PayPal."),
    ("Do you ship internationally?", "We ship to 40 countries from our warehouse."),
]
ORIGIN = "https://chaos.example"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="100 messages, 5 visitors")
    parser.add_argument("--think", type=float, default=2.0, help="a visitor's mean pause between reply and next")
    parser.add_argument("--answer-delay", type=float, default=0.3,
                        help="seconds each answer's first attempt takes on top (ANSWER_DEBUG_DELAY), so kills "
                             "land mid-answer; 0 for the bare retrieval path")
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between worker kills")
    parser.add_argument("--web-every", type=float, default=15.0, help="seconds between web restarts")
    parser.add_argument("--reply-timeout", type=float, default=60.0, help="a visitor's wait for one reply")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the last replies")
    parser.add_argument("--timeout", type=float, default=1200.0, help="the whole run's limit, seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.messages, args.visitors = min(args.messages, 100), min(args.visitors, 5)
    return args


def environment(tag: str, answer_delay: float) -> dict:
    """The processes' environment: this run's database, Redis db 13, queue, prefix, fast delivery settings."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chaos")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    env.update(
        PROCESS_ENV,
        CELERY_QUEUE=f"chaos-{tag}", CHANNELS_PREFIX=f"chaos-{tag}", ALLOWED_HOSTS="*", TORCH_THREADS="1",
        LOG_LEVEL="INFO",
        # Recovery in seconds: heartbeats every 0.5 s, stuck after 3 s without one, swept every second.
        ANSWER_HEARTBEAT_SECONDS="0.5", ANSWER_STUCK_SECONDS="3", ANSWER_QUEUED_STUCK_SECONDS="15",
        ANSWER_RESEND_SECONDS="3", ANSWER_SWEEP_SECONDS="1", ANSWER_DEBUG_DELAY=str(answer_delay),
        # Every visitor comes from 127.0.0.1: only the per-visitor limits apply.
        RATE_LIMITS=json.dumps({"ip_messages": None, "tenant_messages": None, "ip_connects": None,
                                "tenant_connects": None, "ip_frames": None}),
    )
    return env


class Visitor:
    """One widget socket's side of the protocol, with its outbox and resume (as widget.js does it)."""

    def __init__(self, bench: "Chaos", index: int):
        self.bench, self.index = bench, index
        self.token = ""
        self.ws = None
        self.shown: dict[int, dict] = {}  # message id -> MSG
        self.sent: list[dict] = []  # {"client_id", "id", "seq", "acked_at", "reply_at"}
        self.reconnects = 0
        self.refusals = 0

    @property
    def watermark(self) -> int:
        return max((m["seq"] for m in self.shown.values()), default=0)

    async def connect(self, deadline: float) -> None:
        import websockets

        delay = 0.2
        while True:
            url = f"ws://127.0.0.1:{self.bench.port}/ws/widget/?key={self.bench.key}"
            url += f"&visitor={self.token}" if self.token else ""
            try:
                ws = await websockets.connect(url, origin=ORIGIN, open_timeout=5, max_size=2 ** 22)
                session = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if session.get("type") == "session":
                    break
                await ws.close()
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"visitor {self.index} could not reconnect")
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 3.0)
        self.ws, self.token = ws, session["visitor"]
        watermark = self.watermark
        for message in session.get("messages", []):
            self.shown[message["id"]] = message
        if watermark:
            await ws.send(json.dumps({"type": "resume", "after_seq": watermark}))

    async def frame(self, timeout: float) -> dict:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if frame["type"] == "message":
            self.shown[frame["message"]["id"]] = frame["message"]
        elif frame["type"] == "ack":
            self.shown[frame["message"]["id"]] = frame["message"]
        return frame

    async def ask(self, text: str, deadline: float) -> None:
        """Send one message until acked, then wait for the next bot or system message after it."""
        import websockets

        item = {"client_id": str(uuid.uuid4()), "text": text, "id": None}
        self.sent.append(item)
        while item["id"] is None:
            if time.monotonic() > deadline:
                return
            try:
                await self.ws.send(json.dumps({"type": "message", "text": text, "client_id": item["client_id"]}))
                while item["id"] is None:
                    frame = await self.frame(15)
                    if frame["type"] == "ack" and frame["client_id"] == item["client_id"]:
                        item.update(id=frame["message"]["id"], seq=frame["message"]["seq"], acked_at=time.monotonic())
                    elif frame["type"] == "error" and frame.get("client_id") == item["client_id"]:
                        self.refusals += 1
                        if frame["code"] not in ("unavailable", "rate_limited"):
                            item["refused"] = frame["code"]
                            return
                        await asyncio.sleep(min(float(frame.get("retry_after") or 1), 5))
                        break
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed, OSError):
                self.reconnects += 1
                await self.connect(deadline)
        reply_deadline = min(deadline, time.monotonic() + self.bench.args.reply_timeout)
        while time.monotonic() < reply_deadline:
            if any(m["seq"] > item["seq"] and m["sender"] in ("bot", "system") for m in self.shown.values()):
                item["reply_at"] = time.monotonic()
                return
            try:
                await self.frame(max(reply_deadline - time.monotonic(), 0.1))
            except asyncio.TimeoutError:
                pass
            except (websockets.exceptions.ConnectionClosed, OSError):
                self.reconnects += 1
                await self.connect(deadline)

    async def resync(self, deadline: float) -> None:
        """Reconnect and resume once more, and read what comes (the final view of the conversation)."""
        import websockets

        if self.ws is not None:
            await self.ws.close()
        await self.connect(deadline)
        try:
            while True:
                await self.frame(1.5)
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            pass
        await self.ws.close()


class Chaos:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tag = uuid.uuid4().hex[:8]
        self.env = environment(self.tag, args.answer_delay)
        self.logs = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.web = Daphne(self.env, self.logs)
        self.port = self.web.port
        self.workers = [Worker(self.env, self.logs, pool="prefork", name=f"worker{n}") for n in range(2)]
        self.beat = Beat(self.env, self.logs)
        self.events = {"worker_child_kills": 0, "worker_kills": 0, "kills_mid_answer": 0, "web_restarts": 0}
        self.key = ""
        self.tenant_id = None

    def setup(self) -> None:
        database_prepare(self.env, log)
        for key in ("DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "CHANNELS_PREFIX", "ALLOWED_HOSTS",
                    "ANSWER_IN_PROCESS"):
            os.environ[key] = self.env[key]
        django_setup()
        from chatbot.conversations import services
        from chatbot.models import KnowledgeEntry

        tenant = services.tenant_create(f"Chaos {self.tag}", [ORIGIN])
        for question, answer in KNOWLEDGE:
            KnowledgeEntry.objects.create(tenant=tenant, question=question, answer=answer)
        self.key, self.tenant_id = tenant.public_key, tenant.id

    def start(self) -> None:
        """Launch every process at once, then wait until the web process listens and the workers are ready."""
        for process in [self.web, *self.workers, self.beat]:
            process.launch()
        for process in [self.web, *self.workers]:
            process.wait_ready(120)

    def stop(self) -> None:
        for process in [self.beat, *self.workers, self.web]:
            process.stop()
        self.forget()

    def forget(self) -> None:
        """Delete this run's keys from Redis: its queue, bindings, groups, and its unacked tasks (a worker
        killed with a task leaves it there, for a redelivery nobody will take now)."""
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"])
        mine = self.env["CELERY_QUEUE"]
        for key in client.scan_iter(f"*{self.tag}*", count=1000):
            client.delete(key)
        for tag, payload in client.hscan_iter("unacked"):
            if mine.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)

    def busy(self, worker: Worker) -> bool:
        """Whether the worker's log shows an answer task received and not finished (it is answering)."""
        try:
            with open(worker.log, "rb") as f:
                f.seek(max(f.seek(0, 2) - 4000, 0))
                tail = f.read().decode(errors="replace")
        except OSError:
            return False
        received = tail.rfind("inference.answer_message[")
        finished = max(tail.rfind(" succeeded in "), tail.rfind(" retry: "), tail.rfind(" raised "),
                       tail.rfind("WorkerLostError"), tail.rfind(" ready."))
        return received > finished

    async def chaos(self, stop: asyncio.Event) -> None:
        """Every --kill-every seconds kill a worker, preferably one that is answering (waiting up to 2 s for
        one): its pool child (the parent forks another) or, every other time, the whole worker and child
        (started again at once). Every --web-every seconds, kill the web process and start it again."""
        n, next_web = 0, time.monotonic() + self.args.web_every
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.args.kill_every)
                return
            except asyncio.TimeoutError:
                pass
            worker = self.workers[n % 2]
            for _ in range(40):
                answering = [w for w in self.workers if w.alive() and self.busy(w)]
                if answering:
                    worker = answering[0]
                    self.events["kills_mid_answer"] += 1
                    break
                await asyncio.sleep(0.05)
            children = worker.children()
            if n % 2 == 0 and children and worker.alive():
                os.kill(children[0], signal.SIGKILL)  # the parent rejects its task back and forks a new child
                self.events["worker_child_kills"] += 1
            elif worker.alive():
                worker.kill9(group=True)
                worker.launch()  # not waiting for it: the visitors go on meanwhile
                self.events["worker_kills"] += 1
            n += 1
            if time.monotonic() >= next_web:
                self.web.kill9(group=True)
                self.web.launch()
                self.events["web_restarts"] += 1
                next_web = time.monotonic() + self.args.web_every

    async def run(self) -> dict:
        rng = random.Random(self.args.seed)
        visitors = [Visitor(self, i) for i in range(self.args.visitors)]
        deadline = time.monotonic() + self.args.timeout
        for visitor in visitors:
            await visitor.connect(deadline)
        share = [self.args.messages // len(visitors) + (i < self.args.messages % len(visitors))
                 for i in range(len(visitors))]
        stop = asyncio.Event()
        chaos = asyncio.create_task(self.chaos(stop))
        started = time.monotonic()
        done = [0]

        async def talk(visitor: Visitor, count: int) -> None:
            for _ in range(count):
                question, _ = rng.choice(KNOWLEDGE)
                await visitor.ask(question, deadline)
                await asyncio.sleep(rng.uniform(0.5, 1.5) * self.args.think)
                done[0] += 1
                if done[0] % 50 == 0:
                    log(f"{done[0]}/{self.args.messages} messages, {time.monotonic() - started:.0f} s, {self.events}")

        await asyncio.gather(*(talk(v, c) for v, c in zip(visitors, share)))
        sending_s = time.monotonic() - started
        stop.set()
        await chaos
        log(f"all sent in {sending_s:.0f} s; waiting for the last replies")
        await asyncio.to_thread(self.drain)
        for visitor in visitors:
            await visitor.resync(time.monotonic() + 60)
        return await asyncio.to_thread(self.count, visitors, sending_s)

    def drain(self) -> None:
        from django.db import connection

        from chatbot.models import Message

        deadline = time.monotonic() + self.args.drain
        try:
            while time.monotonic() < deadline:
                waiting = Message.objects.filter(conversation__tenant_id=self.tenant_id, sender="visitor",
                                                 answer_state__in=("queued", "answering")).count()
                if not waiting:
                    return
                time.sleep(1)
        finally:
            connection.close()

    def count(self, visitors: list[Visitor], sending_s: float) -> dict:
        from django.db import connection

        try:
            return self._count(visitors, sending_s)
        finally:
            connection.close()

    def _count(self, visitors: list[Visitor], sending_s: float) -> dict:
        from django.db.models import Count

        from chatbot.conversations.delivery import UNAVAILABLE_TEXT
        from chatbot.models import Message

        asked = Message.objects.filter(conversation__tenant_id=self.tenant_id, sender="visitor")
        replies: dict[int, list[int]] = {}
        failed = 0
        for reply_id, reply_to, text in (Message.objects.filter(reply_to__in=asked).exclude(sender="visitor")
                                         .values_list("id", "reply_to_id", "text")):
            replies.setdefault(reply_to, []).append(reply_id)
            failed += text == UNAVAILABLE_TEXT
        stored = {m.id: m for m in asked}
        sent = [item for v in visitors for item in v.sent]
        lost_db = lost_frames = duplicated_db = duplicated_frames = unacked = refused = with_people = 0
        latencies = []
        for visitor in visitors:
            for item in visitor.sent:
                if item.get("refused"):
                    refused += 1
                    continue
                if item["id"] is None:
                    unacked += 1
                    continue
                if stored[item["id"]].answer_state == "":
                    with_people += 1  # stored while people held the conversation: not the bot's to answer
                    continue
                mine = replies.get(item["id"], [])
                lost_db += not mine
                duplicated_db += len(mine) > 1
                lost_frames += bool(mine) and not any(r in visitor.shown for r in mine)
                # What the client shows after it, up to the visitor's next message: one reply, never two.
                answers = []
                for m in sorted(visitor.shown.values(), key=lambda m: m["seq"]):
                    if m["seq"] <= item["seq"]:
                        continue
                    if m["sender"] == "visitor":
                        break
                    answers.append(m["id"])
                duplicated_frames += len(answers) > 1
                if item.get("reply_at"):
                    latencies.append((item["reply_at"] - item["acked_at"]) * 1000)
        attempts = dict(asked.values_list("answer_attempts").annotate(n=Count("id")).order_by("answer_attempts"))
        states = dict(asked.values_list("answer_state").annotate(n=Count("id")).order_by("answer_state"))
        sweeps = sum(w.log.read_text(errors="replace").count("answer sweep: {'requeued': ") for w in self.workers)
        latencies.sort()
        return {
            "messages": len(sent),
            "stored": len(stored),
            "visitors": len(visitors),
            "lost": lost_db + lost_frames + unacked,
            "duplicated": duplicated_db + duplicated_frames,
            "lost_in_db": lost_db,
            "lost_in_frames": lost_frames,
            "unacked": unacked,
            "refused": refused,
            "stored_while_people_held_it": with_people,
            "duplicated_in_db": duplicated_db,
            "duplicated_in_frames": duplicated_frames,
            "failed_bot_unavailable": failed,
            "answer_states": states,
            "attempts": {str(k): v for k, v in attempts.items()},
            "reply_latency_ms": {
                "p50": round(statistics.median(latencies), 1) if latencies else None,
                "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1) if latencies else None,
                "max": round(latencies[-1], 1) if latencies else None,
            },
            "client_reconnects": sum(v.reconnects for v in visitors),
            "transient_refusals": sum(v.refusals for v in visitors),
            "sweep_runs_that_requeued": sweeps,
            **self.events,
            "sending_s": round(sending_s, 1),
            "think_s": self.args.think,
            "answer_delay_s": self.args.answer_delay,
            "kill_every_s": self.args.kill_every,
            "web_every_s": self.args.web_every,
            "logs": str(self.logs),
        }


def main() -> None:
    args = parse_args()
    random.seed(args.seed)
    bench = Chaos(args)
    bench.setup()
    log(f"logs in {bench.logs}; starting daphne, 2 workers and beat")
    try:
        bench.start()
        result = asyncio.run(asyncio.wait_for(bench.run(), args.timeout + args.drain + 120))
    finally:
        bench.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

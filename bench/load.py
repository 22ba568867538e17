"""Load benchmark: concurrent widget sockets on one web process, agent-to-visitor relay latency at given
rates, and the platform's own overhead per visitor message (receive to reply pushed, minus model time).

    createdb -h 127.0.0.1 -U postgres bench_load    # once; the bench migrates it
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_load REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/load.py [--sockets 2000] [--rates 50,100,200] [--agents 1,4]
        [--relay-seconds 10] [--relay-processes 1] [--overhead-messages 100] [--quick]

Everything runs on loopback against real processes: daphne (one process unless --relay-processes says more),
a Celery worker for the overhead phase, PostgreSQL and Redis; each phase is bounded in count and time.
- sockets: opens --sockets widget sockets of returning visitors (one stored reply each) in batches, then
  every socket sends a `resume` and must get its message back; reports how many connected and answered,
  the time it took and the web process's memory. The bench raises its own open-files limit to the hard one.
- relay: --agents agent sockets (each holding its own conversations) send replies at each --rates per
  second, round-robin, for --relay-seconds; each reply is timed from the agent's send to its widget's
  `message` frame (p50/p99/max), and to the ack.
- overhead: visitors send --overhead-messages questions that the store's knowledge base answers, one at
  a time; for each, the time from send to the bot's reply frame, minus the reply's stored `latency_ms`
  (the worker's labelling, retrieval and deciding: model time), is what the platform itself costs.
Both timed phases also report CPU time per message (`web_cpu_ms_per_message`, and the worker's in the
overhead phase) from /proc/<pid>/stat: on a machine shared with other work, latency says more about the
neighbours than about the code, CPU time much less.
Rate limits are turned off in the bench's processes (it measures capacity, not the limits).
Progress goes to stderr; the last line of stdout is one JSON object.
"""
import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.django_env import PROCESS_ENV, django_setup  # noqa: E402
from tests.processes import Daphne, Process, Worker  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402

from chatbot.models import AgentMembership, Conversation, KnowledgeEntry, Message, Tenant, Visitor  # noqa: E402

S = Conversation.Status
ORIGIN = "http://bench.example"
MARK = "bench-load"  # the bench store's slug and its agents' names
NO_LIMITS = {name: None for name in ("visitor_messages", "ip_messages", "tenant_messages", "visitor_frames",
                                     "ip_frames", "visitor_resumes", "ip_connects", "tenant_connects")}
KNOWLEDGE = [
    ("How long does shipping take?", "Standard shipping takes 3 to 5 business days."),
    ("What is your return policy?", "You can return unused items within 30 days."),
    ("Which payment methods do you accept?", "We accept Visa, Mastercard and PayPal."),
    ("Do you ship internationally?", "Yes, we ship to over 40 countries."),
]
QUESTIONS = ["How long does shipping take?", "What is your return policy?",
             "Which payment methods do you accept?", "Do you ship internationally?"]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 2)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far (/proc/<pid>/stat utime and stime): the cost of a
    phase, which a machine shared with other work shows truer than latency does."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the whole line)
    return total / os.sysconf("SC_CLK_TCK")


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- processes ------------------------------------------------------------------------------------


class Processes:
    """The bench's daphne and Celery processes, with an environment (queue, prefixes) of their own."""

    def __init__(self, extra_env: dict | None = None):
        run = uuid.uuid4().hex[:8]
        self.env = dict(os.environ, **PROCESS_ENV, ALLOWED_HOSTS="127.0.0.1,localhost",
                        CHANNELS_PREFIX=f"bench-load-{run}", CELERY_QUEUE=f"bench-load-{run}",
                        RATE_LIMIT_PREFIX=f"bench-load-{run}", RATE_LIMITS=json.dumps(NO_LIMITS),
                        LOG_LEVEL="WARNING", **(extra_env or {}))
        self.logs = Path(tempfile.mkdtemp(prefix="bench-load-"))
        self.started: list[Process] = []

    def _start(self, process: Process) -> Process:
        self.started.append(process)
        return process.start(timeout=90)

    def daphne(self) -> Daphne:
        return self._start(Daphne(self.env, self.logs))

    def worker(self) -> Worker:
        return self._start(Worker(self.env, self.logs))

    def stop(self) -> None:
        for process in self.started:
            process.stop()
        self.started = []


# --- data -----------------------------------------------------------------------------------------


def store_ensure() -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(slug=MARK, defaults={"name": "Bench load store",
                                                                  "allowed_origins": [ORIGIN]})
    if not KnowledgeEntry.objects.filter(tenant=tenant).exists():
        KnowledgeEntry.objects.bulk_create([KnowledgeEntry(tenant=tenant, question=q, answer=a) for q, a in KNOWLEDGE])
    cleanup(tenant)
    return tenant


def cleanup(tenant: Tenant) -> None:
    """The bench store's visitors go (their conversations and messages with them); it is the bench's own.
    After a saturated phase the web process may still be writing replies: try again until it is done."""
    from django.db import IntegrityError

    for _ in range(30):
        try:
            Visitor.objects.filter(tenant=tenant).delete()
            return
        except IntegrityError:
            time.sleep(2)
    Visitor.objects.filter(tenant=tenant).delete()


def agents_ensure(tenant: Tenant, count: int) -> list:
    User = get_user_model()
    users = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"{MARK}-agent-{i}", defaults={"first_name": f"Agent{i}"})
        AgentMembership.objects.get_or_create(user=user, tenant=tenant)
        users.append(user)
    return users


def returning_visitors(tenant: Tenant, count: int) -> list[str]:
    """Visitors with an open conversation holding one bot reply each: their tokens."""
    with transaction.atomic():
        visitors = Visitor.objects.bulk_create([Visitor(tenant=tenant) for _ in range(count)])
        convs = Conversation.objects.bulk_create([Conversation(tenant=tenant, visitor=v, last_seq=1) for v in visitors])
        Message.objects.bulk_create([Message(conversation=c, seq=1, sender="bot", text="Hello!") for c in convs])
    return [v.token for v in visitors]


def held_conversations(tenant: Tenant, agent, count: int) -> list[tuple[int, str]]:
    """Conversations `agent` holds, one per widget: (id, visitor token)."""
    with transaction.atomic():
        visitors = Visitor.objects.bulk_create([Visitor(tenant=tenant) for _ in range(count)])
        convs = Conversation.objects.bulk_create([
            Conversation(tenant=tenant, visitor=v, status=S.HUMAN, assigned_agent=agent) for v in visitors])
    return [(c.id, v.token) for c, v in zip(convs, visitors)]


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# --- phase 1: sockets -----------------------------------------------------------------------------


async def sockets_phase(port: int, key: str, tokens: list[str], batch: int, deadline_s: float, pid: int) -> dict:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}/ws/widget/?key={key}"
    rss_before = rss_mb(pid)
    opened, failures = [], []
    started = time.perf_counter()
    end = started + deadline_s

    async def open_one(token: str):
        ws = await asyncio.wait_for(connect(f"{url}&visitor={token}", origin=ORIGIN, open_timeout=30,
                                            ping_interval=None, max_size=2**20), 60)
        session = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert session["type"] == "session" and len(session["messages"]) == 1, session
        return ws

    for i in range(0, len(tokens), batch):
        if time.perf_counter() > end:
            log(f"  sockets: deadline reached at {len(opened)}")
            break
        results = await asyncio.gather(*(open_one(t) for t in tokens[i:i + batch]), return_exceptions=True)
        for result in results:
            (failures if isinstance(result, BaseException) else opened).append(result)
        if (i // batch) % 5 == 0:
            log(f"  sockets: {len(opened)} open, {len(failures)} failed, {time.perf_counter() - started:.1f} s")
    connect_s = time.perf_counter() - started
    rss_open = rss_mb(pid)
    await asyncio.sleep(2)  # let them sit: still there?

    async def probe(ws) -> float | None:
        t0 = time.perf_counter()
        try:
            await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            return time.perf_counter() - t0 if frame.get("type") == "message" else None
        except Exception:  # noqa: BLE001 - a dead socket is what the probe counts
            return None

    probe_started = time.perf_counter()
    probes = await asyncio.gather(*(probe(ws) for ws in opened))
    probe_s = time.perf_counter() - probe_started
    answered = [p * 1000 for p in probes if p is not None]
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return {
        "wanted": len(tokens), "connected": len(opened), "failed": len(failures),
        "first_failure": repr(failures[0])[:200] if failures else None,
        "connect_seconds": round(connect_s, 2), "connects_per_s": round(len(opened) / connect_s, 1),
        "answered_resume": len(answered), "resume_all_seconds": round(probe_s, 2),
        "resume_p50_ms": percentile(answered, 50), "resume_p99_ms": percentile(answered, 99),
        "web_rss_mb_before": rss_before, "web_rss_mb_open": rss_open,
        "rss_kb_per_socket": round((rss_open - rss_before) * 1024 / max(1, len(opened)), 1)
        if rss_open and rss_before else None,
    }


# --- phase 2: relay -------------------------------------------------------------------------------


async def relay_phase(ports: list[int], key: str, agents: list[tuple[str, list[tuple[int, str]]]], rate: float,
                      total: int, drain_s: float, pids: list[int] = ()) -> dict:
    """`total` agent replies sent at `rate` per second, round-robin over the agents and their conversations,
    each timed to its widget's `message` frame and to its ack. `agents`: (session cookie, its conversations);
    sockets spread over `ports` round-robin; `pids`: the web processes whose CPU time per relayed message is
    reported. bench/inbox.py runs it too, with one agent on one web process."""
    from websockets.asyncio.client import connect

    sent_at, acked, received, errors = {}, {}, {}, []
    agent_sockets, widgets = [], []
    for i, (cookie, _) in enumerate(agents):
        port = ports[i % len(ports)]
        ws = await connect(f"ws://127.0.0.1:{port}/ws/agent/", origin=f"http://127.0.0.1:{port}",
                           additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
                           max_size=2**24, ping_interval=None)
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if first.get("type") != "inbox":
            raise RuntimeError(f"agent socket answered {first}")
        agent_sockets.append(ws)
    n = 0
    for _, conversations in agents:
        for _, token in conversations:
            port = ports[n % len(ports)]
            n += 1
            ws = await connect(f"ws://127.0.0.1:{port}/ws/widget/?key={key}&visitor={token}", origin=ORIGIN,
                               max_size=2**24, ping_interval=None)
            assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "session"
            widgets.append(ws)

    async def read_widget(ws):
        async for raw in ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("type") == "message":
                received.setdefault(frame["message"]["text"], now)

    async def read_agent(ws):
        async for raw in ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("type") == "ack":
                acked.setdefault(frame["client_id"], now)
            elif frame.get("type") == "error":
                errors.append(frame)

    readers = [asyncio.ensure_future(read_widget(ws)) for ws in widgets]
    readers += [asyncio.ensure_future(read_agent(ws)) for ws in agent_sockets]
    run = uuid.uuid4().hex[:6]
    cpu_start = cpu_seconds(list(pids))
    t_start = time.perf_counter()
    for i in range(total):
        delay = t_start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        a = i % len(agents)
        conversations = agents[a][1]
        conversation_id = conversations[(i // len(agents)) % len(conversations)][0]
        text = f"relay {run} {i}: your parcel is on its way"
        sent_at[text] = time.perf_counter()
        await agent_sockets[a].send(json.dumps({"type": "message", "conversation": conversation_id, "text": text,
                                                "client_id": text}))
    send_span = time.perf_counter() - t_start
    end = time.perf_counter() + drain_s
    while (len(received) < total or len(acked) < total) and time.perf_counter() < end:
        await asyncio.sleep(0.05)
    cpu_used = cpu_seconds(list(pids)) - cpu_start
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in [*agent_sockets, *widgets]), return_exceptions=True)
    relay = [(received[t] - sent_at[t]) * 1000 for t in sent_at if t in received]
    acks = [(acked[t] - sent_at[t]) * 1000 for t in sent_at if t in acked]
    result = {
        "agents": len(agents), "widgets": len(widgets), "web_processes": len(ports), "rate_per_s": rate,
        "sent": total, "send_seconds": round(send_span, 2), "delivered": len(relay), "acked": len(acks),
        "errors": len(errors), "relay_p50_ms": percentile(relay, 50), "relay_p99_ms": percentile(relay, 99),
        "relay_max_ms": round(max(relay), 2) if relay else None, "ack_p50_ms": percentile(acks, 50),
        "ack_p99_ms": percentile(acks, 99),
        # Per message the web process handled (acked): a run the machine could not keep up with is not
        # charged for messages still queued.
        "web_cpu_ms_per_message": round(cpu_used * 1000 / len(acks), 3) if pids and acks else None,
    }
    if errors:
        result["first_error"] = errors[0]
    return result


# --- phase 3: the platform's overhead per visitor message -------------------------------------------


async def overhead_phase(port: int, key: str, visitors: int, messages: int, warmup_timeout: float,
                         pids: dict[str, int] | None = None) -> tuple[list[dict], dict[str, float]]:
    """Each visitor asks in turn, one question at a time; returns (send, ack, reply) times and reply ids,
    and the CPU seconds each of `pids` (name: pid) used for the measured messages."""
    from websockets.asyncio.client import connect

    sockets = []
    for _ in range(visitors):
        ws = await connect(f"ws://127.0.0.1:{port}/ws/widget/?key={key}", origin=ORIGIN, ping_interval=None)
        assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "session"
        sockets.append(ws)

    async def ask(ws, text: str, client_id: str, timeout: float) -> dict:
        t_send = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "text": text, "client_id": client_id}))
        t_ack, seq = None, None
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            now = time.perf_counter()
            if frame["type"] == "ack" and frame["client_id"] == client_id:
                t_ack, seq = now, frame["message"]["seq"]
            elif frame["type"] == "message" and seq is not None and frame["message"]["seq"] > seq:
                return {"send": t_send, "ack": t_ack, "reply": now, "reply_id": frame["message"]["id"],
                        "sender": frame["message"]["sender"]}
            elif frame["type"] == "error":
                raise RuntimeError(f"refused: {frame}")

    run = uuid.uuid4().hex[:6]
    for i, ws in enumerate(sockets):  # first messages: create the conversations, load the worker's models
        await ask(ws, QUESTIONS[i % len(QUESTIONS)], f"load-{run}-warm-{i}", warmup_timeout)
    timings = []
    pids = pids or {}
    cpu_start = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    for i in range(messages):
        ws = sockets[i % len(sockets)]
        timings.append(await ask(ws, QUESTIONS[i % len(QUESTIONS)], f"load-{run}-{i}", 30))
    cpu_used = {name: cpu_seconds([pid]) - cpu_start[name] for name, pid in pids.items()}
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return timings, cpu_used


def overhead_summary(timings: list[dict]) -> dict:
    model_ms = dict(Message.objects.filter(pk__in=[t["reply_id"] for t in timings]).values_list("id", "latency_ms"))
    observed = [(t["reply"] - t["send"]) * 1000 for t in timings]
    bot = [t for t in timings if t["sender"] == "bot" and model_ms.get(t["reply_id"]) is not None]
    overhead = [(t["reply"] - t["send"]) * 1000 - model_ms[t["reply_id"]] for t in bot]
    models = [model_ms[t["reply_id"]] for t in bot]
    return {
        "messages": len(timings), "bot_replies": len(bot),
        "observed_p50_ms": percentile(observed, 50), "observed_p99_ms": percentile(observed, 99),
        "model_p50_ms": percentile(models, 50), "model_p99_ms": percentile(models, 99),
        "overhead_p50_ms": percentile(overhead, 50), "overhead_p90_ms": percentile(overhead, 90),
        "overhead_p99_ms": percentile(overhead, 99),
        "overhead_mean_ms": round(statistics.mean(overhead), 2) if overhead else None,
        "ack_p50_ms": percentile([(t["ack"] - t["send"]) * 1000 for t in timings], 50),
    }


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="sockets opened at once")
    parser.add_argument("--rates", default="50,100,200", help="agent replies per second, comma-separated")
    parser.add_argument("--agents", default="1,4", help="agent sockets sending them, comma-separated")
    parser.add_argument("--widgets", type=int, default=40, help="widget sockets of the relay (all agents)")
    parser.add_argument("--relay-seconds", type=float, default=10)
    parser.add_argument("--relay-processes", type=int, default=1, help="web processes sharing the relay's sockets")
    parser.add_argument("--overhead-messages", type=int, default=100)
    parser.add_argument("--overhead-visitors", type=int, default=10)
    parser.add_argument("--skip", default="", help="phases to skip: sockets,relay,overhead")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few sockets, one short relay")
    args = parser.parse_args()
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql") or not settings.REDIS_URL:
        sys.exit("set DATABASE_URL to a PostgreSQL database and REDIS_URL (see the docstring)")
    if args.quick:
        args.sockets, args.rates, args.agents, args.relay_seconds, args.overhead_messages = 100, "50", "2", 3, 10
    args.sockets = min(args.sockets, 10_000)
    args.relay_seconds = min(args.relay_seconds, 60)
    args.overhead_messages = min(args.overhead_messages, 2_000)
    rates = [min(float(r), 1000.0) for r in args.rates.split(",") if r]
    agent_counts = [min(int(a), 20) for a in args.agents.split(",") if a]
    skip = set(args.skip.split(","))

    call_command("migrate", verbosity=0)
    tenant = store_ensure()
    result = {"database": settings.DATABASES["default"]["NAME"], "cpus": os.cpu_count(),
              "open_files_limit": raise_open_files()}
    procs = Processes()
    try:
        if "sockets" not in skip:
            tokens = returning_visitors(tenant, args.sockets)
            web = procs.daphne()
            log(f"sockets: {args.sockets} on one daphne (pid {web.pid}, port {web.port})")
            result["sockets"] = asyncio.run(sockets_phase(web.port, tenant.public_key, tokens, args.batch, 300,
                                                          web.pid))
            log(f"sockets: {result['sockets']}")
            procs.stop()
            cleanup(tenant)

        if "relay" not in skip:
            result["relay"] = []
            webs = [procs.daphne() for _ in range(max(1, min(args.relay_processes, 4)))]
            ports, pids = [web.port for web in webs], [web.pid for web in webs]
            for count in agent_counts:
                users = agents_ensure(tenant, count)
                for rate in rates:
                    per_agent = max(1, args.widgets // count)
                    agents = [(session_cookie(u), held_conversations(tenant, u, per_agent)) for u in users]
                    log(f"relay: {count} agents, {per_agent * count} widgets, {rate}/s for {args.relay_seconds} s "
                        f"on {len(ports)} web process(es)")
                    row = asyncio.run(relay_phase(ports, tenant.public_key, agents, rate,
                                                  int(rate * args.relay_seconds), 20, pids))
                    log(f"relay: {row}")
                    result["relay"].append(row)
                    cleanup(tenant)
            procs.stop()

        if "overhead" not in skip:
            web = procs.daphne()
            worker = procs.worker()
            log(f"overhead: {args.overhead_visitors} visitors, {args.overhead_messages} messages (worker warming up)")
            timings, cpu = asyncio.run(overhead_phase(web.port, tenant.public_key, args.overhead_visitors,
                                                      args.overhead_messages, warmup_timeout=180,
                                                      pids={"web": web.pid, "worker": worker.pid}))
            result["overhead"] = overhead_summary(timings)
            for name, used in cpu.items():
                result["overhead"][f"{name}_cpu_ms_per_message"] = round(used * 1000 / max(len(timings), 1), 3)
            log(f"overhead: {result['overhead']}")
    finally:
        procs.stop()
        cleanup(tenant)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

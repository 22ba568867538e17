"""Agent inbox benchmark: the console's reads on a big store, and agent-to-visitor relay latency.

    createdb -h 127.0.0.1 -U postgres bench    # once; the bench migrates it
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/inbox.py [--conversations 10000 --messages 200000] [--runs 20]
        [--widgets 20 --replies 300 --rate 20] [--explain] [--skip-relay]

Creates (or reuses, by --tenant slug) a store with --conversations conversations and --messages messages,
bulk-created with the inbox fields filled as the services leave them (mixed statuses and sentiments,
waiting_since, last message, unread, assignees). Then it times, as the agent socket runs them:
- the inbox of each tab (all, unassigned, mine, resolved) and a search (a common word and one that matches
  nothing), as lists of AGENT_INBOX_LIMIT CONV payloads, and the tabs' counts: median and p95 of --runs runs;
- opening the longest conversation (the `transcript` frame: mark read, 500 AMSG, suggestions);
- the relay: a real daphne on a free loopback port against the same database and Redis, one agent socket
  (a logged-in session cookie) and --widgets widget sockets; --replies agent replies sent at --rate per
  second, each timed from the agent's send to its widget's `message` frame (p50/p99), and to the ack.
Loopback only, bounded in count and time. Progress goes to stderr; the last line of stdout is one JSON object.
A web process runs every socket's database work on one thread (channels' database_sync_to_async), so one agent
sending much faster than ~50 replies/s (2 CPU cores) only measures the queue: --rate 50 shows the knee.
"""
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.django_env import django_setup  # noqa: E402
from tests.processes import Daphne  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.load import ORIGIN, relay_phase  # noqa: E402 - the relay's widgets come from the store's origin
from bench.store import (  # noqa: E402
    database_migrate, log, store_fill, store_get, store_parser, store_summary, summary_ms, timed,
)
from chatbot.conversations import selectors  # noqa: E402
from chatbot.sockets.agent import _inbox, _open  # noqa: E402
from chatbot.models import AgentMembership, Conversation, HandoffReason, Message, Tenant, Visitor  # noqa: E402

S = Conversation.Status
RELAY_EMAIL = "bench-relay@bench.example"  # marks the relay's visitors, deleted after it
REASONS = {"asked for a person": HandoffReason.ASKED_FOR_PERSON, "low confidence": HandoffReason.LOW_CONFIDENCE,
           "negative sentiment": HandoffReason.NEGATIVE_SENTIMENT}  # a hand-off's detail and its code
TOPICS = [
    "Where is my order {n}?", "I want a refund for order {n}", "Do you ship to {city}?",
    "My parcel {n} arrived damaged", "How do I change my delivery address?", "Can I pay with PayPal?",
    "The discount code {n} does not work", "What sizes does the {item} come in?", "Is the {item} in stock?",
    "This is the third time I ask, nobody helps!", "Thanks, that was quick!", "talk to a person please",
]
REPLIES = [
    "Your order {n} left our warehouse today.", "Refunds take 5 to 7 working days.",
    "We ship to {city} in 3 to 5 days.", "Sorry to hear that! Could you send a photo?",
    "You can change it under My account > Addresses.", "Yes, we accept PayPal and cards.",
    "Let me check that code for you.", "The {item} comes in S, M, L and XL.",
]
CITIES = ["Lisbon", "Oslo", "Lima", "Osaka", "Quebec", "Nairobi"]
ITEMS = ["rain jacket", "tent", "sleeping bag", "hiking boot", "headlamp"]


def fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randint(10000, 99999), city=rng.choice(CITIES), item=rng.choice(ITEMS))


# --- the data ---------------------------------------------------------------------------------


def agents_ensure(tenant: Tenant, count: int) -> list:
    """The bench agent (first) and her colleagues, members of the store's team."""
    User = get_user_model()
    users = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"{tenant.slug}-agent-{i}",
                                             defaults={"first_name": f"Agent{i}", "last_name": "Bench"})
        AgentMembership.objects.get_or_create(user=user, tenant=tenant)
        users.append(user)
    return users


def dataset_create(tenant: Tenant, agents: list, conversations: int, messages: int, long_messages: int,
                   seed: int) -> None:
    """Bulk-create the store's conversations and messages with the inbox fields the services keep."""
    rng = random.Random(seed)
    now = timezone.now()
    statuses = rng.choices([S.BOT, S.WAITING, S.HUMAN, S.RESOLVED], weights=[50, 10, 15, 25], k=conversations)
    # Messages per conversation: one long one for the transcript, the rest spread around the mean.
    rest = max(0, messages - long_messages)
    mean = rest / max(1, conversations - 1)
    sizes = [long_messages] + [max(2, int(rng.gauss(mean, mean / 3))) for _ in range(conversations - 1)]
    scale = rest / max(1, sum(sizes[1:]))
    sizes = [sizes[0]] + [max(2, round(s * scale)) for s in sizes[1:]]
    batch = 500
    t0 = time.perf_counter()
    for start in range(0, conversations, batch):
        chunk = range(start, min(start + batch, conversations))
        visitors = Visitor.objects.bulk_create([
            Visitor(tenant=tenant, email=f"visitor{i}@mail.example" if rng.random() < 0.1 else "") for i in chunk])
        convs, plans = [], []
        for visitor, i in zip(visitors, chunk):
            status = statuses[i] if i else S.HUMAN
            age = timedelta(minutes=rng.uniform(1, 60 * 24 * 30))
            began = now - age
            plan = []  # (sender, text, private, author, at)
            at = began
            for k in range(sizes[i]):
                at += timedelta(seconds=rng.uniform(5, 120))
                if k % 2 == 0:
                    plan.append((Message.Sender.VISITOR, fill(rng.choice(TOPICS), rng), False, None, at))
                elif status == S.HUMAN and k > sizes[i] // 2:
                    note = rng.random() < 0.1
                    plan.append((Message.Sender.AGENT, "Checking with the warehouse" if note else
                                 fill(rng.choice(REPLIES), rng), note, agents[i % len(agents)], at))
                else:
                    plan.append((Message.Sender.BOT, fill(rng.choice(REPLIES), rng), False, None, at))
            # A waiting conversation (and some others) end with a visitor message nobody answered yet.
            if status in (S.WAITING, S.HUMAN) or rng.random() < 0.2:
                if plan[-1][0] != Message.Sender.VISITOR:
                    plan.append((Message.Sender.VISITOR, fill(rng.choice(TOPICS), rng), False, None,
                                 at + timedelta(seconds=30)))
            public = [p for p in plan if not p[2]]
            last = public[-1]
            unanswered = [p for p in plan if p[0] == Message.Sender.VISITOR and p[4] > max(
                [q[4] for q in public if q[0] != Message.Sender.VISITOR] or [began])]
            convs.append(Conversation(
                tenant=tenant, visitor=visitor, status=status,
                assigned_agent=(agents[0] if i == 0 or rng.random() < 0.4 else rng.choice(agents))
                if status == S.HUMAN else None,
                handoff_reason=(reason := rng.choice(list(REASONS)) if status != S.BOT else ""),
                handoff_code=REASONS.get(reason, ""),
                last_seq=len(plan), last_message_text=last[1][:200], last_message_sender=last[0],
                last_message_at=last[4],
                last_sentiment=rng.choices(["neutral", "positive", "negative", ""], weights=[55, 20, 15, 10])[0],
                waiting_since=unanswered[0][4] if unanswered and status != S.RESOLVED else None,
                unread=len(unanswered) if status != S.RESOLVED else 0,
                csat=rng.choice([None, 3, 4, 5, 1]) if status == S.RESOLVED else None,
                resolved_at=last[4] if status == S.RESOLVED else None,
            ))
            plans.append(plan)
        convs = Conversation.objects.bulk_create(convs)
        rows = []
        for conv, plan in zip(convs, plans):
            for seq, (sender, text, private, author, at) in enumerate(plan, 1):
                rows.append(Message(conversation=conv, seq=seq, sender=sender, text=text, private=private,
                                    author=author, intent="order_status" if sender == "visitor" else "",
                                    sentiment="neutral" if sender == "visitor" else ""))
        Message.objects.bulk_create(rows, batch_size=5000)
        # auto_now stamped every row "now"; spread them the way months of chats would.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chatbot_conversation SET created_at = last_message_at - interval '10 minutes', "
                "updated_at = last_message_at WHERE id = ANY(%s)", [[c.id for c in convs]])
        log(f"  {min(start + batch, conversations)}/{conversations} conversations, "
            f"{time.perf_counter() - t0:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chatbot_conversation; ANALYZE chatbot_message; ANALYZE chatbot_visitor")


def dataset_ensure(args) -> tuple[Tenant, list]:
    tenant = store_get(args.tenant, allowed_origins=[ORIGIN])
    agents = agents_ensure(tenant, 5)
    store_fill(tenant, args, Conversation.objects.filter(tenant=tenant).count(), args.conversations,
               "conversations", lambda: dataset_create(tenant, agents, args.conversations, args.messages,
                                                       args.long_messages, args.seed))
    return tenant, agents


# --- the reads --------------------------------------------------------------------------------


def explain(user, tab: str, query: str) -> None:
    qs = selectors.inbox(user, tab, query)[: settings.AGENT_INBOX_LIMIT]
    log(f"--- EXPLAIN ANALYZE inbox tab={tab} q={query!r}")
    log(qs.explain(analyze=True))


def bench_reads(tenant: Tenant, agent, runs: int, show_plans: bool) -> dict:
    out = {"inbox_limit": settings.AGENT_INBOX_LIMIT}
    cases = [("all", ""), ("unassigned", ""), ("mine", ""), ("resolved", ""), ("all", "refund"),
             ("all", "zzqx-nothing")]
    for tab, query in cases:
        times, rows = timed(lambda: _inbox(agent, tab, query), runs)
        name = f"inbox_{tab}" + (f"_search_{query.split('-')[0]}" if query else "")
        out[name] = {**summary_ms(times), "rows": len(rows)}
        log(f"{name}: {out[name]}")
        if show_plans:
            explain(agent, tab, query)
    times, _ = timed(lambda: selectors.inbox_counts(agent), runs)
    out["inbox_counts"] = summary_ms(times)
    log(f"inbox_counts: {out['inbox_counts']}")
    longest = Conversation.objects.filter(tenant=tenant).order_by("-last_seq").values_list("id", "last_seq").first()
    times, frame = timed(lambda: _open(agent, longest[0]), runs)
    out["transcript_open"] = {**summary_ms(times), "conversation_messages": longest[1],
                              "messages_sent": len(frame["messages"])}
    log(f"transcript_open: {out['transcript_open']}")
    return out


# --- the relay ----------------------------------------------------------------------------------


def relay_conversations_create(tenant: Tenant, agent, count: int) -> list[tuple[int, str]]:
    """Conversations the bench agent holds, one per widget: (id, visitor token). The visitors are anonymous,
    marked by e-mail: a visitor with an external id is only found by her verified id, never by token."""
    relay_cleanup(tenant)  # what an interrupted run left
    with transaction.atomic():
        visitors = Visitor.objects.bulk_create([Visitor(tenant=tenant, email=RELAY_EMAIL) for _ in range(count)])
        convs = Conversation.objects.bulk_create([
            Conversation(tenant=tenant, visitor=v, status=S.HUMAN, assigned_agent=agent) for v in visitors])
    return [(c.id, v.token) for c, v in zip(convs, visitors)]


def relay_cleanup(tenant: Tenant) -> None:
    Visitor.objects.filter(tenant=tenant, email=RELAY_EMAIL).delete()


def bench_relay(tenant: Tenant, agent, args) -> dict:
    conversations = relay_conversations_create(tenant, agent, args.widgets)
    client = Client()
    client.force_login(agent)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    env = dict(os.environ, ALLOWED_HOSTS="127.0.0.1,localhost", ANSWER_IN_PROCESS="0", PYTHONUNBUFFERED="1",
               CHANNELS_PREFIX=f"bench-{uuid.uuid4().hex[:8]}", CELERY_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",
               LOG_LEVEL="WARNING")
    web = Daphne(env, Path(tempfile.mkdtemp(prefix="bench-inbox-")))
    try:
        web.start(timeout=90)
        log(f"daphne on 127.0.0.1:{web.port}; {args.widgets} widgets, {args.replies} replies at {args.rate}/s")
        result = asyncio.run(relay_phase([web.port], tenant.public_key, [(cookie, conversations)], args.rate,
                                         args.replies, drain_s=30))
        log(f"relay: {result}")
        return result
    finally:
        web.stop()
        relay_cleanup(tenant)


def main() -> None:
    parser = store_parser(__doc__.splitlines()[0], tenant="bench-inbox", runs=20, seed=7)
    parser.add_argument("--long-messages", type=int, default=2_000, help="messages of the one long conversation")
    parser.add_argument("--widgets", type=int, default=20)
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="agent replies per second, all from the one agent socket")
    parser.add_argument("--skip-relay", action="store_true")
    args = parser.parse_args()
    if not args.skip_relay and not settings.REDIS_URL:
        sys.exit("set REDIS_URL (or --skip-relay)")
    args.replies = min(args.replies, 5_000)
    args.widgets = min(args.widgets, 500)
    database_migrate()
    tenant, agents = dataset_ensure(args)
    result = {
        **store_summary(tenant),
        "open": Conversation.objects.filter(tenant=tenant).exclude(status=S.RESOLVED).count(),
        **bench_reads(tenant, agents[0], args.runs, args.explain),
    }
    if not args.skip_relay:
        result["relay"] = bench_relay(tenant, agents[0], args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

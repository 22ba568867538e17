"""Managers' review benchmark: the review pages and the export on a big store.

    createdb -h 127.0.0.1 -U postgres bench    # once; the bench migrates it
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/review.py \\
        [--conversations 10000 --messages 200000] [--runs 5] [--explain]

Creates (or reuses, by --tenant slug) a store with --conversations conversations and --messages messages,
bulk-created as the answer path leaves them: visitor messages with intent, confidence, sentiment, language
and label versions; bot replies linked to them with model version, score and grounding, some of them
fallbacks; hand-off notices; agents' replies; visitors' thumbs; CSAT on resolved ones. Then, through the
Django test client as the store's manager (the whole view: queries, template, response):
- the review list, unfiltered and with filters and full-text searches, and one conversation's transcript;
- the review queue (first page and a deep one);
- the export of every message (CSV) and every conversation (JSONL), streamed to /dev/null: time and rows,
  then again under tracemalloc for the peak of Python memory, beside the peak for a tenth of the rows
  (flat memory: the two peaks are alike). Each page should render in under 1 s.
Progress goes to stderr; the last line of stdout is one JSON object.
"""
import json
import os
import random
import resource
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.django_env import django_setup  # noqa: E402

django_setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.inbox import CITIES, ITEMS, REPLIES, agents_ensure, fill  # noqa: E402
from bench.store import (  # noqa: E402
    database_migrate, log, page_timed, store_fill, store_get, store_parser, store_summary,
)
from chatbot.review import queries as review  # noqa: E402
from chatbot.models import (  # noqa: E402
    AgentMembership, Conversation, Feedback, HandoffReason, Message, Tenant, TrainingExample, Visitor,
)

S = Conversation.Status
ORIGIN = "http://bench.example"
INTENTS = {  # intent: visitor messages
    "order_status": ["Where is my order {n}?", "has order {n} shipped yet", "track my parcel {n} please"],
    "refund": ["I want a refund for order {n}", "how do I get my money back", "refund please, the {item} broke"],
    "shipping": ["Do you ship to {city}?", "how long does shipping to {city} take", "is delivery free"],
    "sizes": ["What sizes does the {item} come in?", "is the {item} true to size", "do you have the {item} in XL"],
    "complaint": ["This is the third time I ask, nobody helps!", "my parcel {n} arrived damaged", "terrible service"],
    "thanks": ["Thanks, that was quick!", "great, thank you", "perfect, thanks a lot"],
}
FOREIGN = [("es", "¿Hacen envíos a {city}?"), ("es", "Quiero devolver el pedido {n}"),
           ("de", "Wo ist meine Bestellung {n}?"), ("fr", "Où est ma commande {n} ?")]
REASONS = {"visitor asked for a person": HandoffReason.ASKED_FOR_PERSON,
           "negative sentiment for 2 turns": HandoffReason.NEGATIVE_SENTIMENT,
           "out-of-scope request": HandoffReason.OUT_OF_SCOPE,
           "low intent confidence (0.31)": HandoffReason.LOW_CONFIDENCE,
           "2 fallbacks in a row": HandoffReason.REPEATED_FALLBACK}
MODELS = ["retrieval-minilm", "intent-reply-v1", "responder:bench-r1"]
FALLBACK = "Sorry, I didn't quite get that. Could you put it another way?"


def ids_reserve(count: int) -> list[int]:
    """Message ids from the table's own sequence, so replies can point at the messages they answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('chatbot_message', 'id')) FROM generate_series(1, %s)",
                       [count])
        return [row[0] for row in cursor.fetchall()]


def visitor_turn(rng: random.Random) -> dict:
    if rng.random() < 0.05:
        language, template = rng.choice(FOREIGN)
        intent = rng.choice(["order_status", "shipping", "refund"])
    else:
        language, intent = "en", rng.choice(list(INTENTS))
        template = rng.choice(INTENTS[intent])
    sentiment = "negative" if intent == "complaint" else rng.choices(
        ["neutral", "positive", "negative"], weights=[70, 15, 15])[0]
    confidence = round(min(0.999, max(0.05, rng.betavariate(5, 2))), 3)
    if rng.random() < 0.05:
        intent, confidence = "out_of_scope", round(rng.uniform(0.1, 0.5), 3)
    return {"text": template.format(n=rng.randint(10000, 99999), city=rng.choice(CITIES), item=rng.choice(ITEMS)),
            "intent": intent, "intent_confidence": confidence, "sentiment": sentiment,
            "sentiment_confidence": round(rng.uniform(0.5, 0.99), 3), "language": language,
            "label_versions": {"intent": "bench-int-1", "sentiment": "bench-sent-1"}}


def dataset_create(tenant: Tenant, agents: list, conversations: int, messages: int, seed: int) -> None:
    """Bulk-create the store's conversations and messages, labelled and linked as the services leave them."""
    rng = random.Random(seed)
    now = timezone.now()
    per = max(2, messages // conversations)
    batch = 500
    t0 = time.perf_counter()
    for start in range(0, conversations, batch):
        chunk = range(start, min(start + batch, conversations))
        visitors = Visitor.objects.bulk_create([Visitor(tenant=tenant) for _ in chunk])
        convs, plans = [], []
        for visitor, i in zip(visitors, chunk):
            status = rng.choices([S.BOT, S.WAITING, S.HUMAN, S.RESOLVED], weights=[50, 10, 15, 25])[0]
            size = per + (1 if i < messages - per * conversations else 0)
            began = now - timedelta(minutes=rng.uniform(1, 60 * 24 * 90))
            handoff_at = rng.randrange(0, max(1, size - 2), 2) if status != S.BOT or rng.random() < 0.1 else None
            plan, at, asked, reason = [], began, None, ""
            while len(plan) < size:
                at += timedelta(seconds=rng.uniform(5, 120))
                k = len(plan)
                if asked is None or k % 2 == 0:
                    asked = visitor_turn(rng)
                    plan.append(("visitor", asked["text"], at, {k2: v for k2, v in asked.items() if k2 != "text"}))
                elif handoff_at is not None and k > handoff_at:
                    if not reason:
                        reason = rng.choice(list(REASONS))
                        plan.append(("system", "I'm handing you over to a member of our team.", at,
                                     {"reply_to": k - 1, "handoff_reason": reason, "handoff_code": REASONS[reason]}))
                    else:
                        plan.append(("agent", fill(rng.choice(REPLIES), rng), at, {}))
                else:
                    fallback = rng.random() < 0.06
                    plan.append(("bot", FALLBACK if fallback else fill(rng.choice(REPLIES), rng), at, {
                        "reply_to": k - 1, "model_version": rng.choice(MODELS), "score": round(rng.uniform(0.3, 0.95), 3),
                        "grounding": [{"entry": rng.randint(1, 40), "score": round(rng.uniform(0.3, 0.9), 3)}],
                        "handoff_reason": "no knowledge entry close enough" if fallback else "",
                        "handoff_code": HandoffReason.FALLBACK if fallback else ""}))
            last = plan[-1]
            convs.append(Conversation(
                tenant=tenant, visitor=visitor, status=status, handoff_reason=reason,
                handoff_code=REASONS[reason] if reason else "",
                assigned_agent=rng.choice(agents) if status == S.HUMAN else None,
                last_seq=len(plan), last_message_text=last[1][:200], last_message_sender=last[0],
                last_message_at=last[2], last_sentiment=asked["sentiment"],
                language=next((p[3]["language"] for p in reversed(plan) if p[0] == "visitor"), ""),
                csat=rng.choice([1, 2, 3, 4, 5, 5, 4, None]) if status == S.RESOLVED else None,
                resolved_at=last[2] if status == S.RESOLVED else None,
            ))
            plans.append(plan)
        convs = Conversation.objects.bulk_create(convs)
        ids = iter(ids_reserve(sum(len(p) for p in plans)))
        rows, feedback = [], []
        for conv, plan in zip(convs, plans):
            seq_ids = [next(ids) for _ in plan]
            for seq, ((sender, text, at, extra), pk) in enumerate(zip(plan, seq_ids), 1):
                extra = dict(extra)
                if "reply_to" in extra:
                    extra["reply_to_id"] = seq_ids[extra.pop("reply_to")]
                author = rng.choice(agents) if sender == "agent" else None
                rows.append(Message(id=pk, conversation=conv, seq=seq, sender=sender, text=text, author=author,
                                    **extra))
                if sender == "bot" and rng.random() < 0.04:
                    feedback.append(Feedback(message_id=pk, source="visitor", original_reply=text,
                                             rating="down" if rng.random() < 0.6 else "up"))
        Message.objects.bulk_create(rows, batch_size=5000)
        Feedback.objects.bulk_create(feedback, batch_size=5000)
        with connection.cursor() as cursor:  # auto_now stamped every row "now"
            cursor.execute(
                "UPDATE chatbot_conversation SET created_at = last_message_at - interval '10 minutes', "
                "updated_at = last_message_at WHERE id = ANY(%s)", [[c.id for c in convs]])
            cursor.execute("UPDATE chatbot_message m SET created_at = c.created_at + m.seq * interval '40 seconds' "
                           "FROM chatbot_conversation c WHERE m.conversation_id = c.id AND c.id = ANY(%s)",
                           [[c.id for c in convs]])
        log(f"  {min(start + batch, conversations)}/{conversations} conversations, {time.perf_counter() - t0:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chatbot_conversation; ANALYZE chatbot_message; ANALYZE chatbot_feedback")


def dataset_ensure(args) -> tuple[Tenant, object]:
    tenant = store_get(args.tenant, allowed_origins=[ORIGIN], languages=["en"])
    agents = agents_ensure(tenant, 5)
    manager = agents[0]
    AgentMembership.objects.filter(user=manager, tenant=tenant).update(role=AgentMembership.Role.MANAGER)
    if not TrainingExample.objects.filter(tenant=tenant).exists():
        TrainingExample.objects.bulk_create([TrainingExample(tenant=tenant, text=t.format(n=1, city="Oslo", item="tent"),
                                                             intent=intent)
                                             for intent, texts in INTENTS.items() for t in texts])
    store_fill(tenant, args, Message.objects.filter(conversation__tenant=tenant).count(), args.messages, "messages",
               lambda: dataset_create(tenant, agents, args.conversations, args.messages, args.seed))
    Message.objects.filter(conversation__tenant=tenant, reviewed_at__isnull=False).update(reviewed_at=None,
                                                                                         reviewed_by=None)
    return tenant, manager


# --- the pages ----------------------------------------------------------------------------------


def page_timer(client: Client, url: str, runs: int) -> dict:
    out, response = page_timed(client, url, runs)
    if "rows" in (response.context or {}):
        out["rows"] = len(response.context["rows"])
    if response.context and response.context.get("page"):
        out["matches"] = response.context["page"].paginator.count
    if response.context and "total" in response.context:
        out["matches"] = response.context["total"]
    return out


def bench_pages(tenant: Tenant, manager, runs: int, show_plans: bool) -> dict:
    from django.test.utils import setup_test_environment

    setup_test_environment()  # responses carry their template context: rows and matches are reported
    client = Client()
    client.force_login(manager)
    some_agent = AgentMembership.objects.filter(tenant=tenant, role="agent").values_list("user_id", flat=True).first()
    today = timezone.localdate()
    cases = {
        "review_list": "",
        "review_status_sentiment": "status=resolved&sentiment=negative",
        "review_handoff_reason": "handed_off=yes&reason=low_confidence",
        "review_intent": "intent=refund",
        "review_language": "language=es",
        "review_rating_down": "rating=down",
        "review_csat_low": "csat=low",
        "review_dates": f"date_from={(today - timedelta(days=30)).isoformat()}&date_to={today.isoformat()}",
        "review_agent": f"agent={some_agent}",
        "review_model": "model=bench-r1",
        "review_search_common": "q=refund",
        "review_search_phrase": "q=%22where+is+my+order%22",
        "review_search_nothing": "q=zzqx",
        "review_everything": "status=resolved&handed_off=yes&intent=refund&sentiment=negative&language=en&q=refund",
    }
    out = {}
    for name, query in cases.items():
        out[name] = page_timer(client, f"/console/review/?{query}", runs)
        log(f"{name}: {out[name]}")
    longest = Conversation.objects.filter(tenant=tenant).order_by("-last_seq").values_list("id", flat=True).first()
    out["review_conversation"] = page_timer(client, f"/console/review/{longest}/", runs)
    log(f"review_conversation: {out['review_conversation']}")
    out["queue"] = page_timer(client, "/console/review/queue/", runs)
    log(f"queue: {out['queue']}")
    out["queue_page_50"] = page_timer(client, "/console/review/queue/?page=50", runs)
    log(f"queue_page_50: {out['queue_page_50']}")
    if show_plans:
        log("--- EXPLAIN ANALYZE queue")
        log(review.queue((tenant.id,))[:review.QUEUE_PAGE_SIZE].explain(analyze=True))
        filters = review.Filters(tenant_ids=(tenant.id,), q="refund")
        log("--- EXPLAIN ANALYZE review q=refund")
        log(review.conversations(filters)[:review.PAGE_SIZE].explain(analyze=True))
    return out


# --- the export ---------------------------------------------------------------------------------


def export_stream(client: Client, url: str, measure_memory: bool) -> dict:
    """Stream one export to /dev/null: seconds, bytes, lines, and (measured) the peak of Python memory."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if measure_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200 and response.streaming, url
    size = lines = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.streaming_content:
            sink.write(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - t0
    out = {"seconds": round(seconds, 2), "megabytes": round(size / 2**20, 1), "lines": lines}
    if measure_memory:
        out["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
        tracemalloc.stop()
    out["maxrss_growth_mb"] = round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1)
    return out


def bench_export(tenant: Tenant, manager) -> dict:
    client = Client()
    client.force_login(manager)
    dates = Conversation.objects.filter(tenant=tenant).order_by("created_at").values_list("created_at", flat=True)
    total = dates.count()
    tenth_from = timezone.localtime(dates[total - total // 10]).date().isoformat()  # the newest tenth or so
    all_messages = f"/console/export/?store={tenant.slug}&format=csv&rows=message"
    tenth_messages = f"{all_messages}&date_from={tenth_from}"
    out = {
        "messages_csv": export_stream(client, all_messages, measure_memory=False),
        "conversations_jsonl": export_stream(
            client, f"/console/export/?store={tenant.slug}&format=jsonl&rows=conversation", measure_memory=False),
    }
    log(f"export: {out}")
    out["memory_all_messages"] = export_stream(client, all_messages, measure_memory=True)
    out["memory_tenth_of_messages"] = export_stream(client, tenth_messages, measure_memory=True)
    out["memory_all_messages_jsonl"] = export_stream(client, all_messages.replace("csv", "jsonl"), measure_memory=True)
    log(f"export memory: {out}")
    return out


def main() -> None:
    parser = store_parser(__doc__.splitlines()[0], tenant="bench-review", runs=5, seed=11)
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()
    database_migrate()
    tenant, manager = dataset_ensure(args)
    result = {
        **store_summary(tenant),
        "feedback": Feedback.objects.filter(message__conversation__tenant=tenant).count(),
        "target_ms": 1000,
        **bench_pages(tenant, manager, args.runs, args.explain),
    }
    if not args.skip_export:
        result["export"] = bench_export(tenant, manager)
    slow = [k for k, v in result.items() if isinstance(v, dict) and v.get("median_ms", 0) > result["target_ms"]]
    result["pages_over_target"] = slow
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Insights benchmark: the managers' insights and "what to fix first" pages on a big store.

    createdb -h 127.0.0.1 -U postgres bench    # once; the bench migrates it
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/insights.py \\
        [--conversations 10000 --messages 200000 --days 60] [--runs 10] [--explain] [--clusters]

Creates (or reuses, by --tenant slug) a store whose conversations spread over --days days, bulk-created as
the services leave them: visitor messages labelled (intent, sentiment, language), bot replies grounded in
knowledge entries or falling back, hand-offs (transition, system notice, reason), agents' replies,
resolutions, CSAT, visitors' and agents' thumbs, visitors coming back. Then it times, median and p95 of
--runs runs, each page's data functions and the whole page through Django's test client (a logged-in
manager): /console/insights/ over the default 30 days and over all --days, and /console/insights/fix/.
With --clusters it also times grouping the unanswered questions (the worker's job, off the page).
Progress goes to stderr; the last line of stdout is one JSON object.
"""
import json
import math
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.django_env import django_setup  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.inbox import CITIES, ITEMS  # noqa: E402
from bench.store import (  # noqa: E402
    database_migrate, log, page_timed, store_fill, store_get, store_parser, store_summary, summary_ms, timed,
)
from chatbot.review import fixes, insights  # noqa: E402
from chatbot.models import (  # noqa: E402
    AgentMembership, Conversation, ConversationTransition, Feedback, HandoffReason, KnowledgeEntry, Message, Tenant,
    Visitor,
)

S = Conversation.Status
INTENTS = {  # intent: (weight, how visitors ask)
    "order_status": (20, ["Where is my order {n}?", "Has order {n} shipped yet?", "tracking for {n} please"]),
    "refund": (10, ["I want a refund for order {n}", "how do I get my money back", "refund please, {item} broken"]),
    "shipping_time": (12, ["How long does shipping take?", "when will my {item} arrive", "delivery time to {city}?"]),
    "returns": (8, ["How do I return the {item}?", "can I send back my {item}", "return policy?"]),
    "sizes": (6, ["What sizes does the {item} come in?", "is the {item} true to size"]),
    "stock": (6, ["Is the {item} in stock?", "when is the {item} back in stock"]),
    "payment": (5, ["Can I pay with PayPal?", "do you take Apple Pay", "payment failed for {n}"]),
    "discount": (5, ["The discount code {n} does not work", "any discount codes?"]),
    "complaint": (6, ["This is the third time I ask, still waiting!", "my {item} arrived broken",
                      "terrible service, nobody helps"]),
    "human_agent": (4, ["talk to a person please", "I want a real human"]),
    "greeting": (8, ["hi", "hello there", "Thanks, that was quick!"]),
    "out_of_scope": (4, ["What's the capital of Peru?", "Do you ship to Canada?", "can you deliver to Canada",
                         "recipe for pancakes", "Do you have a store in Berlin?"]),
}
REASONS = [("visitor asked for a person", 25), ("negative sentiment for 2 turns", 20), ("out-of-scope request", 15),
           ("low intent confidence (0.{d})", 25), ("2 fallbacks in a row", 10), ("language: {lang}", 5)]
CODES = {  # each reason's code (chatbot.models.HandoffReason)
    "visitor asked for a person": HandoffReason.ASKED_FOR_PERSON,
    "negative sentiment for 2 turns": HandoffReason.NEGATIVE_SENTIMENT,
    "out-of-scope request": HandoffReason.OUT_OF_SCOPE,
    "low intent confidence (0.{d})": HandoffReason.LOW_CONFIDENCE,
    "2 fallbacks in a row": HandoffReason.REPEATED_FALLBACK,
    "language: {lang}": HandoffReason.LANGUAGE,
}
LANGUAGES = [("en", 85), ("es", 7), ("de", 4), ("fr", 3), ("", 1)]
SENTIMENTS = [("neutral", 60), ("positive", 18), ("negative", 18), ("", 4)]
KNOWLEDGE = 40


def pick(rng: random.Random, weighted):
    values, weights = zip(*weighted)
    return rng.choices(values, weights=weights)[0]


def fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randint(10000, 99999), city=rng.choice(CITIES), item=rng.choice(ITEMS),
                           d=rng.randint(10, 44), lang=rng.choice(["pt", "it", "pl"]))


def manager_ensure(tenant: Tenant):
    user, _ = get_user_model().objects.get_or_create(username=f"{tenant.slug}-manager",
                                                     defaults={"first_name": "Bench", "last_name": "Manager"})
    AgentMembership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": "manager"})
    agent, _ = get_user_model().objects.get_or_create(username=f"{tenant.slug}-agent", defaults={"first_name": "Ada"})
    AgentMembership.objects.get_or_create(user=agent, tenant=tenant)
    return user, agent


def dataset_create(tenant: Tenant, agent, conversations: int, messages: int, days: int, seed: int) -> None:
    """Bulk-create the store's conversations, messages, hand-offs and feedback over the last `days` days."""
    rng = random.Random(seed)
    now = timezone.now()
    entries = KnowledgeEntry.objects.bulk_create([
        KnowledgeEntry(tenant=tenant, question=f"FAQ {i}: {fill(rng.choice(INTENTS[intent][1]), rng)}",
                       answer=f"Answer {i}.") for i, intent in
        enumerate(rng.choices(list(INTENTS), k=KNOWLEDGE))])
    intents = [(k, w) for k, (w, _) in INTENTS.items()]
    per = max(4.0, messages / conversations)
    t0 = time.perf_counter()
    batch = 1000
    returning: list[Visitor] = []
    for start in range(0, conversations, batch):
        count = min(batch, conversations - start)
        with transaction.atomic():
            plans = []
            for _ in range(count):
                began = now - timedelta(days=rng.random() * days)
                handed = rng.random() < 0.25
                resolved = rng.random() < (0.8 if handed else 0.5)
                template = pick(rng, REASONS) if handed else ""
                plans.append({"began": began, "handed": handed, "resolved": resolved,
                              "reason": fill(template, rng), "code": CODES.get(template, ""),
                              "size": max(2, round(rng.gauss(per, per / 4))),
                              "csat": rng.choice([None, None, 1, 2, 3, 4, 5, 5]) if handed else None,
                              "back": bool(returning) and resolved and rng.random() < 0.15})
            new_visitors = Visitor.objects.bulk_create([Visitor(tenant=tenant) for p in plans if not p["back"]])
            visitors = iter(new_visitors)
            convs = []
            for plan in plans:
                visitor = rng.choice(returning) if plan["back"] else next(visitors)
                if plan["resolved"] and not plan["back"]:
                    returning.append(visitor)
                    returning = returning[-2000:]
                convs.append(Conversation(
                    tenant=tenant, visitor=visitor, status=S.RESOLVED if plan["resolved"] else
                    (S.HUMAN if plan["handed"] else S.BOT), handoff_reason=plan["reason"], handoff_code=plan["code"],
                    csat=plan["csat"],
                    assigned_agent=agent if plan["handed"] and not plan["resolved"] else None))
            convs = Conversation.objects.bulk_create(convs)
            rows, transitions = [], []
            for conv, plan in zip(convs, plans):
                intent = pick(rng, intents)
                language = pick(rng, LANGUAGES)
                seq, handed_at = 0, (plan["size"] // 2) if plan["handed"] else None
                turn = 0
                while seq < plan["size"]:
                    turn += 1
                    seq += 1
                    text = fill(rng.choice(INTENTS[intent][1]), rng)
                    asked = Message(conversation=conv, seq=seq, sender="visitor", text=text, intent=intent,
                                    intent_confidence=round(rng.uniform(0.3, 0.99), 3),
                                    sentiment=pick(rng, SENTIMENTS), language=language)
                    rows.append(asked)
                    if seq >= plan["size"]:
                        break
                    seq += 1
                    if handed_at is not None and seq >= handed_at:
                        rows.append(Message(conversation=conv, seq=seq, sender="system", text="Handing you over.",
                                            handoff_reason=plan["reason"], handoff_code=plan["code"]))
                        transitions.append(ConversationTransition(conversation=conv, from_status=S.BOT,
                                                                  to_status=S.WAITING, reason=plan["reason"]))
                        while seq < plan["size"]:
                            seq += 1
                            if rng.random() < 0.5:
                                rows.append(Message(conversation=conv, seq=seq, sender="agent", author=agent,
                                                    text="Let me look into that for you."))
                            else:
                                rows.append(Message(conversation=conv, seq=seq, sender="visitor", intent=intent,
                                                    text=fill(rng.choice(INTENTS[intent][1]), rng),
                                                    sentiment=pick(rng, SENTIMENTS), language=language))
                        break
                    fallback = rng.random() < 0.1
                    entry = rng.choice(entries)
                    rows.append(Message(
                        conversation=conv, seq=seq, sender="bot", text="Sorry?" if fallback else entry.answer,
                        handoff_reason="no knowledge entry close enough" if fallback else "",
                        handoff_code=HandoffReason.FALLBACK if fallback else "",
                        model_version="retrieval-minilm", score=round(rng.uniform(0.2, 0.9), 3),
                        grounding=[{"entry": entry.id, "question": entry.question, "score": 0.6}]))
                    if rng.random() < 0.3:
                        intent = pick(rng, intents)
                if plan["handed"]:
                    transitions.append(ConversationTransition(conversation=conv, from_status=S.WAITING,
                                                              to_status=S.HUMAN, to_agent=agent, reason="taken over"))
                if plan["resolved"]:
                    transitions.append(ConversationTransition(conversation=conv, from_status=S.HUMAN if plan["handed"]
                                                              else S.BOT, to_status=S.RESOLVED, reason="resolved"))
            rows = Message.objects.bulk_create(rows, batch_size=5000)
            # reply_to: each bot reply and notice answers the visitor message before it
            previous: dict[int, Message] = {}
            for m in rows:
                if m.sender == "visitor":
                    previous[m.conversation_id] = m
                elif m.sender in ("bot", "system") and m.conversation_id in previous:
                    m.reply_to_id = previous[m.conversation_id].id
            Message.objects.bulk_update([m for m in rows if m.reply_to_id], ["reply_to"], batch_size=5000)
            ConversationTransition.objects.bulk_create(transitions, batch_size=5000)
            feedback = []
            for m in rows:
                if m.sender == "bot" and rng.random() < 0.04:
                    feedback.append(Feedback(message=m, source="visitor", rating=rng.choice(["up", "up", "down"])))
                elif m.sender == "bot" and rng.random() < 0.01:
                    feedback.append(Feedback(message=m, source="agent", agent=agent, rating="down",
                                             correction="A better answer."))
            Feedback.objects.bulk_create(feedback, batch_size=5000)
            ids = [c.id for c in convs]
            with connection.cursor() as cursor:
                # auto_now stamped every row "now": spread them as the plans say.
                cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_began (id bigint primary key, began timestamptz)")
                cursor.execute("TRUNCATE bench_began")
                cursor.executemany("INSERT INTO bench_began VALUES (%s, %s)",
                                   [(c.id, p["began"]) for c, p in zip(convs, plans)])
                cursor.execute(
                    "UPDATE chatbot_message m SET created_at = b.began + m.seq * interval '45 seconds' "
                    "+ CASE m.sender WHEN 'visitor' THEN interval '0' WHEN 'bot' THEN (1 + m.id % 9) * interval "
                    "'1 second' - interval '45 seconds' ELSE (m.id % 300) * interval '1 second' END "
                    "FROM bench_began b WHERE m.conversation_id = b.id")
                cursor.execute(
                    "UPDATE chatbot_conversationtransition t SET created_at = b.began + CASE t.to_status "
                    "WHEN 'waiting' THEN interval '3 minutes' WHEN 'human' THEN interval '6 minutes' "
                    "ELSE interval '2 hours' END "
                    "FROM bench_began b WHERE t.conversation_id = b.id")
                cursor.execute(
                    "UPDATE chatbot_conversation c SET last_seq = (SELECT max(seq) FROM chatbot_message m "
                    "WHERE m.conversation_id = c.id) WHERE c.id = ANY(%s)", [ids])
                cursor.execute(
                    "UPDATE chatbot_conversation c SET created_at = b.began, updated_at = b.began + interval '1 hour', "
                    "last_message_at = b.began + c.last_seq * interval '45 seconds', "
                    "resolved_at = CASE WHEN c.status = 'resolved' THEN b.began + interval '2 hours' END "
                    "FROM bench_began b WHERE c.id = b.id")
        log(f"  {min(start + batch, conversations)}/{conversations} conversations, {time.perf_counter() - t0:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chatbot_conversation; ANALYZE chatbot_message; ANALYZE chatbot_feedback; "
                       "ANALYZE chatbot_conversationtransition; ANALYZE chatbot_visitor")


def dataset_ensure(args):
    tenant = store_get(args.tenant)
    manager, agent = manager_ensure(tenant)
    have = Message.objects.filter(conversation__tenant=tenant).count()
    store_fill(tenant, args, have, math.ceil(args.messages * 0.98), "messages",
               lambda: dataset_create(tenant, agent, args.conversations, args.messages, args.days, args.seed))
    return tenant, manager


def bench_functions(tenant: Tenant, period: insights.Period, runs: int) -> dict:
    """Each data function of the pages on its own."""
    out = {}
    calls = {
        "conversations_daily": lambda: insights.conversations_daily(tenant.id, period),
        "handoff_reasons": lambda: insights.handoff_reasons(tenant.id, period),
        "response_times": lambda: insights.response_times(tenant.id, period),
        "csat_summary": lambda: insights.csat_summary(tenant.id, period),
        "sentiment_daily": lambda: insights.sentiment_daily(tenant.id, period),
        "top_intents": lambda: insights.top_values(tenant.id, period, "intent"),
        "top_languages": lambda: insights.top_values(tenant.id, period, "language"),
        "problem_intents": lambda: fixes.problem_intents(tenant.id, period),
        "downrated_knowledge": lambda: fixes.downrated_knowledge(tenant.id, period),
        "complaint_terms": lambda: fixes.complaint_terms(tenant.id, period),
    }
    for name, call in calls.items():
        def in_page(call=call):
            with insights.page_reads():
                return call()

        times, _ = timed(in_page, runs)
        out[name] = summary_ms(times)["median_ms"]
    return out


def bench_page(client: Client, url: str, runs: int) -> dict:
    summary, response = page_timed(client, url, runs)
    return {**summary, "bytes": len(response.content), "url": url}


def explain(tenant: Tenant, period: insights.Period) -> None:
    qs = insights.conversation_outcomes(insights.conversations_in(tenant.id, period))
    log("--- EXPLAIN ANALYZE conversations_daily")
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    log(qs.annotate(day=TruncDate("created_at")).order_by().values("day").annotate(
        n=Count("id", filter=insights.BOT_RESOLVED)).explain(analyze=True))
    log("--- EXPLAIN ANALYZE sentiment_daily")
    log(insights.visitor_messages_in(tenant.id, period).annotate(day=TruncDate("created_at")).order_by()
        .values("day").annotate(n=Count("id")).explain(analyze=True))


def main() -> None:
    parser = store_parser(__doc__.splitlines()[0], tenant="bench-insights", runs=10, seed=11)
    parser.add_argument("--days", type=int, default=60, help="days the conversations spread over")
    parser.add_argument("--clusters", action="store_true", help="also time grouping the unanswered questions")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # Django's test client
    database_migrate()
    tenant, manager = dataset_ensure(args)
    client = Client()
    client.force_login(manager)
    today = timezone.localdate()
    default = insights.period_parse(None, None)
    everything = insights.Period(today - timedelta(days=args.days), today)
    result = {
        **store_summary(tenant),
        "messages_in_30_days": insights.visitor_messages_in(tenant.id, default).count(),
        "cpus": os.cpu_count(),
    }
    span = lambda p: f"tenant={tenant.slug}&from={p.start}&to={p.end}"  # noqa: E731
    result["insights_page_30_days"] = bench_page(client, f"/console/insights/?{span(default)}", args.runs)
    log(f"insights 30 days: {result['insights_page_30_days']}")
    result["insights_page_all_days"] = bench_page(client, f"/console/insights/?{span(everything)}", args.runs)
    log(f"insights {args.days} days: {result['insights_page_all_days']}")
    result["fix_page_30_days"] = bench_page(client, f"/console/insights/fix/?{span(default)}", args.runs)
    log(f"fix 30 days: {result['fix_page_30_days']}")
    result["fix_page_all_days"] = bench_page(client, f"/console/insights/fix/?{span(everything)}", args.runs)
    log(f"fix {args.days} days: {result['fix_page_all_days']}")
    result["functions_all_days_median_ms"] = bench_functions(tenant, everything, max(3, args.runs // 2))
    log(f"functions: {result['functions_all_days_median_ms']}")
    if args.explain:
        explain(tenant, everything)
    if args.clusters:
        from inference.clusters import unanswered_clusters

        t0 = time.perf_counter()
        stored = unanswered_clusters(tenant.id, everything)
        result["clusters"] = {"seconds": round(time.perf_counter() - t0, 2), "questions": stored["questions"],
                              "groups": len(stored["clusters"]),
                              "biggest": [(c["size"], c["label"]) for c in stored["clusters"][:3]]}
        log(f"clusters: {result['clusters']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

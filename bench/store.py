"""What the big-store benches (inbox, review, insights) share: their common arguments, a migrated PostgreSQL
database, the bench store made or reused, the result's header, and the timing of reads and pages.
Import it after bench.django_env.django_setup()."""
import argparse
import statistics
import sys
import time
from typing import Callable, TypeVar

from django.conf import settings
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client

from chatbot.models import Conversation, KnowledgeEntry, Message, Tenant, Visitor

T = TypeVar("T")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(max(ms), 2), "runs": len(ms)}


def timed(call: Callable[[], T], runs: int) -> tuple[list[float], T]:
    """`runs` timings of `call()` after a warm one (connection, plans, caches), and its last result."""
    call()
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return times, result


def page_timed(client: Client, url: str, runs: int) -> tuple[dict, HttpResponse]:
    """The summary of `runs` GETs of a page that must answer 200 (the whole view: queries, template), and
    the last response."""
    def get() -> HttpResponse:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response

    times, response = timed(get, runs)
    return summary_ms(times), response


def store_parser(description: str, *, tenant: str, runs: int, seed: int) -> argparse.ArgumentParser:
    """The arguments every big-store bench takes; the bench adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tenant", default=tenant, help="slug of the bench store (reused when it is full)")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=runs, help="timed runs of each read or page")
    parser.add_argument("--explain", action="store_true", help="print the main queries' plans to stderr")
    parser.add_argument("--seed", type=int, default=seed)
    return parser


def database_migrate() -> None:
    """Exit unless DATABASE_URL names PostgreSQL (the queries timed and explained are its), then migrate it."""
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (see the docstring)")
    call_command("migrate", verbosity=0)


def store_get(slug: str, **fields) -> Tenant:
    """The bench store of that slug, created with `fields` the first time."""
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": f"Bench store {slug}", **fields})
    return tenant


def store_fill(tenant: Tenant, args: argparse.Namespace, have: int, wanted: int, unit: str,
               create: Callable[[], None]) -> None:
    """Reuse the store when it holds `wanted` `unit` (conversations or messages) already; else empty it (its
    visitors, and their conversations and messages with them; its knowledge entries) and `create()` its data."""
    if have >= wanted:
        log(f"reusing {tenant.slug}: {have} {unit}")
        return
    if have:
        log(f"{tenant.slug} has {have} {unit}, fewer than {wanted}: creating it afresh")
        Visitor.objects.filter(tenant=tenant).delete()
        KnowledgeEntry.objects.filter(tenant=tenant).delete()
    log(f"creating {args.conversations} conversations and about {args.messages} messages in {tenant.slug}")
    create()


def store_summary(tenant: Tenant) -> dict:
    """The head of a bench's result: which database and store, and how big the store is."""
    return {
        "database": settings.DATABASES["default"]["NAME"],
        "tenant": tenant.slug,
        "conversations": Conversation.objects.filter(tenant=tenant).count(),
        "messages": Message.objects.filter(conversation__tenant=tenant).count(),
    }

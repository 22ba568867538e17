"""What `/healthz` checks: the database and, when configured, Redis (channel layer, broker, rate limits).

Each check has a short timeout, so a load balancer or orchestrator asking every few seconds learns of
an outage in about a second instead of waiting on a hung connection; a failing part is named, not
explained (no addresses or messages in a public response).
"""
import asyncio

import redis.exceptions

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction

CHECK_TIMEOUT = 1.5  # seconds per part


def _database() -> None:
    """SELECT 1 on a connection of its own (a worker thread's), closed after: nothing stale is reused."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET LOCAL statement_timeout = %s", [int(CHECK_TIMEOUT * 1000)])
                cursor.execute("SELECT 1")
    finally:
        connection.close()


async def _redis() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT,
                                     socket_connect_timeout=CHECK_TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _check(name: str, awaitable) -> tuple[str, str]:
    try:
        await asyncio.wait_for(awaitable, CHECK_TIMEOUT + 0.5)
    except (asyncio.TimeoutError, TimeoutError, redis.exceptions.TimeoutError):
        return name, "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure of the part means it is not usable
        return name, f"error ({type(exc).__name__})"
    return name, "ok"


async def health_check() -> dict:
    """{"status": "ok"|"degraded", "checks": {part: "ok"|reason}, "failing": [parts]}; parts checked at once."""
    checks = [_check("database", sync_to_async(_database, thread_sensitive=False)())]
    if settings.REDIS_URL:
        checks.append(_check("redis", _redis()))
    results = dict(await asyncio.gather(*checks))
    failing = [name for name, result in results.items() if result != "ok"]
    return {"status": "degraded" if failing else "ok", "checks": results, "failing": failing}

"""Running calls at the same moment in threads of their own, each on its own database connection: how the
tests check what two requests at once do (two take-overs, two hand-offs)."""
import threading

from django.db import connection


def race(*calls):
    """Run `calls` at the same moment in threads of their own; returns each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results

"""Django for the bench scripts: each runs as `python bench/x.py` against the project's own settings, so
the repository must be importable and the settings loaded before any model is imported. Also what the
processes a bench starts (daphne, Celery) share: their settings and their database."""
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Every process a bench starts: answers on the workers, logs as they come, no model ever downloaded.
PROCESS_ENV = {"ANSWER_IN_PROCESS": "0", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}


def django_setup() -> None:
    """Put the repository on sys.path, name the project's settings (unless the caller chose others) and set
    Django up; a second call does nothing more. A bench that sets DATABASE_URL or REDIS_URL for its own run
    sets them first: the settings read them once, here."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django

    django.setup()


def database_prepare(env: dict, log: Callable[..., None]) -> None:
    """Create the run's database (env's DATABASE_URL) if missing, and migrate it."""
    import psycopg

    base, name = env["DATABASE_URL"].rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)

"""Django for the bench scripts: each runs as `python bench/x.py` against the project's own settings, so
the repository must be importable and the settings loaded before any model is imported."""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def django_setup() -> None:
    """Put the repository on sys.path, name the project's settings (unless the caller chose others) and set
    Django up; a second call does nothing more. A bench that sets DATABASE_URL or REDIS_URL for its own run
    sets them first: the settings read them once, here."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django

    django.setup()

"""Production settings: no start with the development SECRET_KEY or DEBUG on a public host, and the
deploy checks (`manage.py check --deploy`) say what else is missing."""
import os
import subprocess
import sys

import pytest
from django.core.checks import Error

from chatbot import checks
from tests.conftest import ROOT

LONG_KEY = "k" * 50


def start(deploy: bool = False, **env) -> subprocess.CompletedProcess:
    """`manage.py check` (with `deploy`: --deploy) in a fresh process with these settings in its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in {
        "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "PUBLIC_URL", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER"}}
    clean.update(env)
    args = [sys.executable, "manage.py", "check"] + (["--deploy", "--fail-level", "ERROR"] if deploy else [])
    return subprocess.run(args, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env", [
    {"ALLOWED_HOSTS": "chat.example.com"},  # the development key
    {"ALLOWED_HOSTS": "chat.example.com", "SECRET_KEY": "short"},
    {"ALLOWED_HOSTS": "chat.example.com", "SECRET_KEY": LONG_KEY, "DEBUG": "true"},
    {"ALLOWED_HOSTS": "localhost,chat.example.com", "SECRET_KEY": LONG_KEY, "DEBUG": "1"},
])
def test_a_public_host_with_the_dev_key_or_debug_refuses_to_start(env):
    result = start(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("env", [
    {},  # make run: DEBUG off, localhost, the development key
    {"DEBUG": "true"},  # a developer's own machine
    {"ALLOWED_HOSTS": "*"},  # the test suite's servers
    {"ALLOWED_HOSTS": "chat.example.com", "SECRET_KEY": LONG_KEY, "PUBLIC_URL": "https://chat.example.com"},
])
def test_local_and_properly_configured_servers_start(env):
    result = start(**env)
    assert result.returncode == 0, result.stderr


def test_check_deploy_fails_on_the_dev_key_and_passes_a_real_deployment():
    local = start(deploy=True)
    assert local.returncode != 0 and "chatbot.E001" in local.stderr
    real = start(deploy=True, ALLOWED_HOSTS="chat.example.com", SECRET_KEY=LONG_KEY,
                 PUBLIC_URL="https://chat.example.com", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert real.returncode == 0, real.stderr


def ids(problems) -> set[str]:
    return {p.id for p in problems}


def test_deploy_checks(settings):
    settings.SECRET_KEY, settings.DEBUG, settings.PUBLIC_HOSTS = settings.DEV_SECRET_KEY, False, []
    settings.ALLOWED_HOSTS, settings.PUBLIC_URL = ["localhost"], "http://localhost:8000"
    assert ids(checks.production_settings()) == {"chatbot.E001"}
    settings.SECRET_KEY = LONG_KEY
    assert checks.production_settings() == []
    settings.DEBUG, settings.ALLOWED_HOSTS = True, ["*"]
    problems = checks.production_settings()
    assert ids(problems) == {"chatbot.E002", "chatbot.W001"}
    assert all(isinstance(p, Error) for p in problems if p.id.startswith("chatbot.E"))
    settings.DEBUG, settings.ALLOWED_HOSTS = False, ["chat.example.com"]
    settings.PUBLIC_HOSTS, settings.PUBLIC_URL = ["chat.example.com"], "http://chat.example.com"
    assert ids(checks.production_settings()) == {"chatbot.W002"}
    settings.PUBLIC_URL = "https://chat.example.com"
    settings.SESSION_COOKIE_SECURE, settings.SECURE_PROXY_SSL_HEADER = False, None
    assert ids(checks.production_settings()) == {"chatbot.W003", "chatbot.W004"}
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert checks.production_settings() == []
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = True  # stores' order systems could reach private services
    assert ids(checks.production_settings()) == {"chatbot.E003"}
    settings.PUBLIC_HOSTS, settings.ALLOWED_HOSTS, settings.PUBLIC_URL = [], ["localhost"], "http://localhost:8000"
    assert checks.production_settings() == []  # `make run` on one's own machine


def test_https_public_url_makes_cookies_secure_and_trusts_its_origin_for_csrf():
    code = ("from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.CSRF_TRUSTED_ORIGINS, s.SECURE_HSTS_SECONDS, "
            "s.SECURE_PROXY_SSL_HEADER)")
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "PUBLIC_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="chatbot.settings", SECRET_KEY=LONG_KEY, ALLOWED_HOSTS="chat.example.com",
               PUBLIC_URL="https://chat.example.com", SECURE_HSTS_SECONDS="31536000",
               SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[0] == (
        "True True ['https://chat.example.com'] 31536000 ('HTTP_X_FORWARDED_PROTO', 'https')"), out.stderr
    env.update(PUBLIC_URL="http://localhost:8000", ALLOWED_HOSTS="localhost")
    env.pop("SECURE_HSTS_SECONDS")
    env.pop("SECURE_PROXY_SSL_HEADER")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[0] == "False False [] 0 None", out.stderr

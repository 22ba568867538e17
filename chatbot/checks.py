"""System checks for production settings, run by `manage.py check --deploy` (and settings.py refuses to
start at all with the development SECRET_KEY or DEBUG when ALLOWED_HOSTS names a public host)."""
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


def _public_url_is_local() -> bool:
    host = urlsplit(settings.PUBLIC_URL).hostname or ""
    return host in settings.LOCAL_HOSTS or host.endswith(".localhost")


@register(Tags.security, deploy=True)
def production_settings(app_configs=None, **kwargs) -> list:
    """Errors that make a deployment unsafe, warnings that make it weaker than it should be."""
    problems = []
    public = bool(settings.PUBLIC_HOSTS) or "*" in settings.ALLOWED_HOSTS or not _public_url_is_local()
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY or len(settings.SECRET_KEY) < 32:
        problems.append(Error(
            "SECRET_KEY is the development key (or shorter than 32 characters).",
            hint="Set SECRET_KEY to a long random value, e.g. python3 -c 'import secrets; "
                 "print(secrets.token_urlsafe(50))'. It signs sessions and visitor tokens.",
            id="chatbot.E001",
        ))
    if settings.DEBUG and public:
        problems.append(Error("DEBUG is on while the server is reachable by a public host name.",
                              hint="Unset DEBUG (it is off by default).", id="chatbot.E002"))
    if "*" in settings.ALLOWED_HOSTS:
        problems.append(Warning("ALLOWED_HOSTS allows any host.", hint="Name the server's host(s).",
                                id="chatbot.W001"))
    if not _public_url_is_local() and not settings.PUBLIC_URL.startswith("https://"):
        problems.append(Warning("PUBLIC_URL is not https: widget sockets and console logins travel in clear text.",
                                hint="Put a TLS-terminating proxy in front and set PUBLIC_URL=https://...",
                                id="chatbot.W002"))
    if settings.ACTIONS_ALLOW_PRIVATE_HOSTS and public:
        problems.append(Error(
            "ACTIONS_ALLOW_PRIVATE_HOSTS is on while the server is reachable by a public host name: a store's "
            "order-system address could reach this network's private services.",
            hint="Unset ACTIONS_ALLOW_PRIVATE_HOSTS (development and tests only).", id="chatbot.E003"))
    if settings.PUBLIC_URL.startswith("https://"):
        if not (settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE):
            problems.append(Warning("PUBLIC_URL is https but the session or CSRF cookie is not secure.",
                                    id="chatbot.W003"))
        if settings.SECURE_PROXY_SSL_HEADER is None:
            problems.append(Warning(
                "PUBLIC_URL is https but SECURE_PROXY_SSL_HEADER is unset: behind a TLS-terminating proxy Django "
                "sees plain http.", hint="e.g. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https",
                id="chatbot.W004"))
    return problems

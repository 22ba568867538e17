"""HTTP hardening that Django's SecurityMiddleware does not do: a Content-Security-Policy on the console."""
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse


def console_csp(request: HttpRequest) -> str:
    """The console's policy: everything from this server, nothing inline, sockets to this host only.

    `'self'` covers ws(s) in CSP level 3; the explicit ws:// and wss:// sources are for older browsers.
    """
    try:
        host = request.get_host()
        sockets = f" ws://{host} wss://{host}"
    except DisallowedHost:
        sockets = ""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self'{sockets}",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ])


class ConsoleSecurityMiddleware:
    """Adds the console's Content-Security-Policy to the pages under settings.CONSOLE_CSP_PATHS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(settings.CONSOLE_CSP_PATHS) and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = console_csp(request)
        return response

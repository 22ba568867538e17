"""Pages: the demo store and a health check."""
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static

from . import selectors

DEMO_SLUG = "demo"


def widget_src(request: HttpRequest | None = None) -> str:
    """Absolute URL of widget.js: stores' pages load it from our host, not theirs."""
    path = static("chatbot/widget.js")
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.PUBLIC_URL + path


def demo_store(request: HttpRequest, slug: str = DEMO_SLUG) -> HttpResponse:
    tenant = selectors.tenant_by_slug(slug)
    if tenant is None:
        raise Http404("No such store. Run `python manage.py seed_demo` to create the demo store.")
    return render(request, "demo_store.html", {"tenant": tenant, "widget_src": widget_src(request)})


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})

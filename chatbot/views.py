"""Pages: the demo store (and its order system's webhook endpoint) and a health check."""
import re

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from chatbot.actions.demo_orders import demo_orders_answer
from chatbot.conversations import selectors
from chatbot.health import health_check

DEMO_SLUG = "demo"
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")  # es, pt-BR, zh-Hant-TW


def widget_src(request: HttpRequest | None = None) -> str:
    """Absolute URL of widget.js: stores' pages load it from our host, not theirs."""
    path = static("chatbot/widget.js")
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.PUBLIC_URL + path


def demo_store(request: HttpRequest, slug: str = DEMO_SLUG) -> HttpResponse:
    """The demo store's page; `?lang=es` (any language tag) sets its <html lang>, which the widget follows."""
    tenant = selectors.tenant_by_slug(slug)
    if tenant is None:
        raise Http404("No such store. Run `python manage.py seed_demo` to create the demo store.")
    lang = request.GET.get("lang", "")
    page_lang = lang if LANGUAGE_TAG.fullmatch(lang) else "en"
    return render(request, "demo_store.html",
                  {"tenant": tenant, "widget_src": widget_src(request), "page_lang": page_lang})


@csrf_exempt  # signed with the connection's secret instead (X-Chatbot-Signature)
@require_POST
def demo_orders(request: HttpRequest) -> JsonResponse:
    """The demo order system's store actions webhook, as a store's own endpoint would be."""
    status, answer = demo_orders_answer(request.body, request.headers.get("X-Chatbot-Timestamp", ""),
                                        request.headers.get("X-Chatbot-Signature", ""),
                                        request.headers.get("Idempotency-Key", ""))
    return JsonResponse(answer, status=status)


async def health(request: HttpRequest) -> JsonResponse:
    """200 when the database and Redis answer; 503 naming the failing part when one does not (fast)."""
    report = await health_check()
    return JsonResponse(report, status=503 if report["failing"] else 200)

"""The managers' insights pages in the console: figures with charts (chatbot.review.insights) and what to fix
first (chatbot.review.fixes). Thin: the store comes from chatbot.conversations.access (managers only), the figures from those
modules; the charts' data reaches insights.js through json_script (no inline script)."""
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from chatbot.review import fixes, insights
from chatbot.console.views import _managed, _page, console_view, managed_tenant
from chatbot.models import Tenant

NOT_A_MANAGER = "Only a store's managers may see its insights."
TIMES = (
    ("bot_first_response", "Bot's first reply", "from the visitor's first message"),
    ("human_first_response", "Agent's first reply", "from the hand-off"),
    ("resolution", "Time to resolution", "from the first message"),
)


def _scope(request: HttpRequest, params) -> tuple[Tenant, insights.Period]:
    """The store (one the user manages: `tenant` slug, else her first) and the period of the request."""
    tenant = managed_tenant(request, params, NOT_A_MANAGER)
    return tenant, insights.period_parse(params.get("from"), params.get("to"))


def duration(seconds: float | None) -> str:
    """'42 s', '3 min', '2 h 5 min', '3 d 4 h'; an en dash when there is nothing to measure."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _context(request: HttpRequest, tenant: Tenant, period: insights.Period, tab: str, **extra) -> dict:
    query = {"tenant": tenant.slug, **period.as_query()}
    return _page(request, "insights", tenant=tenant, period=period, tab=tab, managed=_managed(request),
                 query=urlencode(query), **extra)


@console_view
@require_GET
def insights_page(request: HttpRequest) -> HttpResponse:
    tenant, period = _scope(request, request.GET)
    data = insights.insights(tenant, period)
    times = [{"key": key, "name": name, "hint": hint, "link": data["links"][key], "n": data["times"][key]["n"],
              "median": duration(data["times"][key]["median_s"]), "p90": duration(data["times"][key]["p90_s"])}
             for key, name, hint in TIMES]
    return render(request, "console/insights.html",
                  _context(request, tenant, period, "overview", data=data, times=times,
                           first_response=insights.first_response_targets(tenant.id, period)))


@console_view
@require_GET
def fixes_page(request: HttpRequest) -> HttpResponse:
    tenant, period = _scope(request, request.GET)
    return render(request, "console/insights_fix.html", _context(
        request, tenant, period, "fix", suggestions=fixes.suggestions(tenant, period),
        clusters=fixes.clusters_status(tenant.id)))


@console_view
@require_POST
def fixes_recompute(request: HttpRequest) -> HttpResponse:
    """Queue a new grouping of the store's unanswered questions over the page's period."""
    tenant, period = _scope(request, request.POST)
    fixes.clusters_request(tenant, period)
    messages.success(request, "Grouping the unanswered questions again; reload the page in a minute.")
    query = urlencode({"tenant": tenant.slug, **period.as_query()})
    return redirect(f"{reverse('console:insights-fix')}?{query}")

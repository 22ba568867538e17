"""The managers' "Team" page in the console: how a store's hand-offs reach people. The assignment rule, business
hours (time zone, weekly schedule, holidays), the first-response target, and each member's capacity and languages.
Thin: the store comes from chatbot.conversations.access (managers only), the write from
chatbot.conversations.assignment (team_settings_save), whose refusals land on the form's fields."""
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from chatbot.console.forms import TeamSettingsForm, field_of
from chatbot.console.views import _managed, _page, console_view, managed_tenant
from chatbot.conversations import assignment, hours, presence, selectors, services
from chatbot.errors import InvalidField
from chatbot.models import Tenant

NOT_A_MANAGER = "Only a store's managers may set how its team takes hand-offs."


def _now_state(tenant: Tenant) -> dict:
    """Open or closed right now, and when it is back (in the store's zone), for the page's header."""
    schedule, now = hours.schedule_of(tenant), timezone.now()
    back = hours.back_at(schedule, now)
    return {"always_open": schedule.always_open, "open": hours.is_open(schedule, now),
            "back_at": back.astimezone(schedule.zone) if back else None, "zone": schedule.zone.key}


def _render(request: HttpRequest, tenant: Tenant, form: TeamSettingsForm, members: list, status: int = 200):
    user_ids = [seat.user_id for seat in members]
    online, loads = presence.online_user_ids(tenant.id), assignment.open_loads(tenant.id, user_ids)
    rows = [{**row, "online": row["seat"].user_id in online, "load": loads.get(row["seat"].user_id, 0)}
            for row in form.member_rows()]
    return render(request, "console/team.html", _page(
        request, "team", tenant=tenant, managed=_managed(request), form=form, rows=rows, state=_now_state(tenant),
    ), status=status)


@console_view
@require_http_methods(["GET", "POST"])
def team_page(request: HttpRequest) -> HttpResponse:
    tenant = managed_tenant(request, request.POST if request.method == "POST" else request.GET, NOT_A_MANAGER)
    members = selectors.team_of(tenant.id)
    if request.method == "GET":
        return _render(request, tenant, TeamSettingsForm(initial=TeamSettingsForm.initial_of(tenant, members),
                                                         members=members), members)
    form = TeamSettingsForm(request.POST, members=members)
    if form.is_valid():
        data = form.cleaned_data
        try:
            assignment.team_settings_save(
                request.user, tenant, assignment=data["assignment"], timezone_name=data["timezone"],
                business_hours=form.business_hours(), holidays=data["holidays"],
                first_response_minutes=data["first_response_minutes"], members=form.member_settings())
        except InvalidField as exc:
            form.add_error(field_of(form, exc.field), exc.detail)
        else:
            # A rule switched on, the store open now, room added: hand-offs waiting go out at once.
            services.conversations_assign_waiting([tenant.id])
            messages.success(request, f"Saved how {tenant.name}'s team takes hand-offs.")
            return redirect(f"{reverse('console:team')}?{urlencode({'tenant': tenant.slug})}")
    return _render(request, tenant, form, members, status=400)

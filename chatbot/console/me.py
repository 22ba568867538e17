"""The console's "My settings" page (/console/me/), for every agent: how she hears of hand-offs nobody was online
for (AgentMembership.notify: each, digest, none; chatbot.mail.notify), one form per store she is on. Thin: the
write is chatbot.conversations.assignment.member_notify_set, which takes her own memberships only (another agent's,
another store's and a missing one answer 404 alike) and whose refusal of the value lands on the form's field."""
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from chatbot.console.forms import NotifyForm, field_of
from chatbot.console.views import _page, console_view
from chatbot.conversations import assignment, selectors
from chatbot.errors import InvalidField


def _form(seat) -> NotifyForm:
    """A store's form; its ids carry the membership, so that several on one page stay apart."""
    return NotifyForm(initial={"membership": seat.pk, "notify": seat.notify}, auto_id=f"id_%s_{seat.pk}")


def _membership_id(raw: str) -> int | str:
    """The posted membership as an id when it is one; anything else goes to the service as is (refused there
    like a missing membership)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else raw


def _every(seconds: int) -> str:
    """How often digests go out, in words: "hour", "2 hours", "30 minutes"."""
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    minutes = max(1, round(seconds / 60))
    return "minute" if minutes == 1 else f"{minutes} minutes"


def _render(request: HttpRequest, refused: tuple[int, NotifyForm] | None = None, status: int = 200) -> HttpResponse:
    """Her stores' forms; `refused`: (membership id, the form) of the one whose value was refused."""
    rows = [{"seat": seat, "form": refused[1] if refused and refused[0] == seat.pk else _form(seat)}
            for seat in selectors.memberships_of(request.user)]
    context = _page(request, "me", rows=rows, email=request.user.email,
                    digest_every=_every(settings.EMAIL_DIGEST_SECONDS))
    return render(request, "console/me.html", context, status=status)


@console_view
@require_http_methods(["GET", "POST"])
def me_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request)
    membership_id = _membership_id(request.POST.get("membership", ""))
    try:
        seat = assignment.member_notify_set(request.user, membership_id, request.POST.get("notify", ""))
    except InvalidField as exc:  # her own membership (another one is NotFound: 404), a value that is no choice
        form = NotifyForm(request.POST, auto_id=f"id_%s_{membership_id}")
        form.add_error(field_of(form, exc.field), exc.detail)
        return _render(request, (membership_id, form), status=400)
    messages.success(request, f"Saved how {seat.tenant.name} tells you of hand-offs: "
                              f"{seat.get_notify_display().lower()}.")
    return redirect(reverse("console:me"))

"""The managers' models page in the console: each model kind's versions with the gate's verdicts and
scores, the retrain runs with live progress (models.js polls runs.json), and the retrain and rollback
buttons. Thin: the store comes from chatbot.conversations.access (managers only), reads from chatbot.learning.selectors,
writes from chatbot.learning.services and chatbot.learning.registry.

The sentiment model is one for the whole platform: its managers see it, only superusers retrain or roll
it back.
"""
from functools import wraps
from typing import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_POST

from chatbot.conversations import access

from chatbot.learning import services as learning, selectors as learning_selectors, registry
from chatbot.console.views import _managed, _page, console_view, managed_tenant
from chatbot.errors import PermissionDenied
from chatbot.models import Tenant, TrainingRun

NOT_A_MANAGER = "Only a store's managers may see its models."
PLATFORM_ONLY = "The sentiment model belongs to the platform: only its operators may retrain or roll it back."


def _tenant(request: HttpRequest, params) -> Tenant:
    """The store of the request (`tenant` slug, else the first she manages); managers only."""
    return managed_tenant(request, params, NOT_A_MANAGER)


def _kind(request: HttpRequest, tenant: Tenant) -> str | None:
    """The one kind the form names (None, with the error shown, when it names none we know); a 403 when
    the user may not change it (the platform's sentiment model)."""
    kind = request.POST.get("kind", "")
    if kind not in learning.KINDS:
        messages.error(request, f"Unknown model kind {kind!r}; use one of {', '.join(learning.KINDS)}.")
        return None
    if learning.run_owner(tenant, kind) is None and not access.sees_all_tenants(request.user):
        raise PermissionDenied(PLATFORM_ONLY)
    return kind


def _back(tenant: Tenant) -> HttpResponse:
    return redirect(f"{reverse('console:models')}?{urlencode({'tenant': tenant.slug})}")


def _model_action(action: Callable[[HttpRequest, Tenant, str, str], None]):
    """A button of the models page: a POST naming the store and one model kind, checked here (managers only;
    the platform's sentiment model, its operators only); `action(request, tenant, kind, name)` says what it did
    with `messages`, and the page shows it again."""

    @console_view
    @require_POST
    @wraps(action)
    def view(request: HttpRequest) -> HttpResponse:
        tenant = _tenant(request, request.POST)
        kind = _kind(request, tenant)
        if kind is not None:
            action(request, tenant, kind, learning_selectors.KIND_NAMES.get(kind, kind).lower())
        return _back(tenant)

    return view


@console_view
@require_GET
def models_page(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request, request.GET)
    runs = learning_selectors.runs_recent(tenant)
    return render(request, "console/models.html", _page(
        request, "models", tenant=tenant, managed=_managed(request),
        kinds=learning_selectors.kinds_overview(tenant, request.user), runs=runs,
        any_active=any(r["active"] for r in runs),
        runs_url=f"{reverse('console:models-runs')}?{urlencode({'tenant': tenant.slug})}",
    ))


@console_view
@require_GET
def runs_json(request: HttpRequest) -> HttpResponse:
    """The page's runs, for models.js to follow a retrain without reloading."""
    tenant = _tenant(request, request.GET)
    runs = learning_selectors.runs_recent(tenant)
    response = JsonResponse({"tenant": {"slug": tenant.slug, "name": tenant.name},
                             "active": any(r["active"] for r in runs), "runs": runs})
    response["Cache-Control"] = "no-store"
    return response


@_model_action
def retrain(request: HttpRequest, tenant: Tenant, kind: str, name: str) -> None:
    """Queue a retrain of one kind; while one is queued or running, say so instead of queueing another."""
    asked = timezone.now()
    run = learning.retrain_request(tenant, kind, trigger=TrainingRun.Trigger.CONSOLE, user=request.user)[0]
    if run.created_at >= asked:
        messages.success(request, f"Retraining the {name} (run #{run.pk}): it is queued; follow it below.")
    else:
        stage = f", {run.stage}" if run.stage else ""
        messages.info(request, f"The {name} is already being retrained (run #{run.pk}, {run.status}{stage}, "
                               f"{round(run.progress * 100)} %): follow it below.")


@_model_action
def rollback(request: HttpRequest, tenant: Tenant, kind: str, name: str) -> None:
    """Restore the version active before the current one; the workers switch on their next message."""
    try:
        reason = f"rolled back in the console by {request.user.get_username()}"
        restored = registry.model_version_rollback(kind, learning.run_owner(tenant, kind), reason=reason)
    except registry.NothingToRollBack as exc:  # a form's refusal: shown on the page it came from
        messages.error(request, f"{capfirst(exc.detail)}.")
        return
    messages.success(request, f"Rolled the {name} back to version {restored.version}; "
                              "the bot uses it from its next message.")

"""The one family of user errors: every refusal a user can cause is a ServiceError with a stable code, turned
into an HTTP response by chatbot.console.views.error_response and into a CommandError by ServiceCommand; and
the one list of transient errors is the one every retry reads."""
import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.http import Http404
from django.test import RequestFactory

from chatbot import errors
from chatbot.console.canned import CannedReplyInvalid
from chatbot.console.views import error_response
from chatbot.conversations.identity import IdentityRefused
from chatbot.errors import (
    AssignedToOther, InvalidDataFile, InvalidState, NoActiveModel, NotEnoughData, NotFound, PermissionDenied,
    RateLimited, ServiceError, UnknownTenant,
)
from chatbot.learning.registry import NothingToRollBack
from chatbot.management.base import ServiceCommand, command_error
from chatbot.review.queries import InvalidFilter
from inference.responder_services import ResponderError
from inference.retraining import RetrainError

USER_ERRORS = {
    NotFound: "not_found", UnknownTenant: "unknown_tenant", NoActiveModel: "no_active_model",
    RateLimited: "rate_limited", PermissionDenied: "forbidden", InvalidDataFile: "invalid_data_file",
    NotEnoughData: "not_enough_data", InvalidState: "invalid_state", AssignedToOther: "assigned_to_other",
    InvalidFilter: "invalid_filter", IdentityRefused: "identity_refused", CannedReplyInvalid: "invalid_canned_reply",
    NothingToRollBack: "nothing_to_roll_back", RetrainError: "not_enough_data", ResponderError: "responder_refused",
}


@pytest.mark.parametrize(("kind", "code"), USER_ERRORS.items(), ids=lambda v: getattr(v, "__name__", v))
def test_every_user_error_is_a_service_error_with_its_code(kind, code):
    assert issubclass(kind, ServiceError) and kind.code == code
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code)


def test_a_raise_may_give_a_more_precise_code_and_keeps_its_message():
    refused = ResponderError("tenant 'x' has no trained responder", NoActiveModel.code)
    assert (refused.code, refused.detail, str(refused)) == (
        "no_active_model", "tenant 'x' has no trained responder", "tenant 'x' has no trained responder")


# --- HTTP: chatbot.console.views.error_response ----------------------------------------------------


def respond(exc: ServiceError, accept: str = "text/html"):
    return error_response(RequestFactory().get("/console/x/", HTTP_ACCEPT=accept), exc)


@pytest.mark.parametrize(("exc", "status"), [
    (ServiceError("Give the right intent, sentiment or reply.", "empty_feedback"), 400),
    (InvalidFilter("`csat` must be one of 1, 2."), 400),
    (InvalidState("This conversation is resolved."), 409),
    (AssignedToOther("Ada is handling this conversation."), 409),
    (RateLimited("Slow down."), 429),
])
def test_a_refusal_answers_its_status_as_json_or_text(exc, status):
    as_json = respond(exc, "application/json")
    assert as_json.status_code == status
    assert json.loads(as_json.content) == {"ok": False, "code": exc.code, "detail": exc.detail}
    as_text = respond(exc)
    assert (as_text.status_code, as_text.content.decode()) == (status, exc.detail + "\n")
    assert as_text["Content-Type"] == "text/plain; charset=utf-8"


def test_not_found_is_the_404_page_whoever_asks():
    with pytest.raises(Http404):
        respond(NotFound("No such conversation."), "application/json")
    with pytest.raises(Http404):
        respond(UnknownTenant("unknown tenant 'x'"))


@pytest.mark.django_db
def test_permission_denied_is_the_consoles_403_page():
    response = respond(PermissionDenied("Only the store's managers may do that."))
    assert response.status_code == 403 and "Only the store&#x27;s managers may do that." in response.content.decode()


# --- commands: chatbot.management.base.ServiceCommand -----------------------------------------------


class Refusing(ServiceCommand):
    def handle(self, *args, **options):
        raise NotEnoughData("tenant 'acme' has 1 labelled example\nimport more with import_examples")


class Broken(ServiceCommand):
    def handle(self, *args, **options):
        raise KeyError("a bug")


def test_a_refusal_ends_a_command_with_its_first_line():
    with pytest.raises(CommandError, match=r"^tenant 'acme' has 1 labelled example$") as refused:
        call_command(Refusing(), stdout=StringIO())
    assert isinstance(refused.value.__cause__, NotEnoughData) and refused.value.returncode == 1
    assert str(command_error(ServiceError("", "empty_text"))) == "empty_text"


def test_a_bug_in_a_command_is_not_dressed_up_as_a_refusal():
    with pytest.raises(KeyError):
        call_command(Broken(), stdout=StringIO())


def test_every_command_of_the_platform_maps_refusals_in_the_one_place():
    commands = {name: app for name, app in get_commands().items() if app in ("chatbot", "inference")}
    assert {"create_tenant", "add_agent", "retrain", "rollback", "train_nlu", "import_examples"} <= set(commands)
    for name, app in commands.items():
        assert isinstance(load_command_class(app, name), ServiceCommand), name


# --- transient errors --------------------------------------------------------------------------------


def test_one_list_of_transient_errors_names_the_drivers_classes():
    import kombu.exceptions
    import psycopg
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    from pathlib import Path

    root = Path(errors.__file__).resolve().parents[1]
    listing = [str(p.relative_to(root)) for package in ("chatbot", "inference") for p in (root / package).rglob("*.py")
               if "redis.exceptions.ConnectionError" in p.read_text()]
    assert listing == ["chatbot/errors.py"]  # nowhere else lists them again
    assert {OperationalError, InterfaceError, psycopg.OperationalError, redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError, kombu.exceptions.OperationalError} <= set(errors.TRANSIENT_ERRORS)
    assert not any(issubclass(kind, ServiceError) for kind in errors.TRANSIENT_ERRORS)

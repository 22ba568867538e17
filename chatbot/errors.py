"""Errors in two kinds, each listed once.

- The one family of errors a user can cause: `ServiceError` and its subclasses, each with a stable `code`
  and a message for people; turned into HTTP responses in one place (chatbot.console.views.error_response),
  into CommandError in one place (chatbot.management.base.ServiceCommand) and into socket error frames.
- `TRANSIENT_ERRORS`: the drivers' exceptions that pass (retried, never shown to a user as their fault).
"""
import kombu.exceptions
import psycopg
import redis.exceptions
from django.db import InterfaceError, OperationalError

# Errors that pass: the database restarting or failing over, Redis or the broker away for a while.
# Django wraps psycopg's errors in its own; the raw ones are listed for code that talks to psycopg.
TRANSIENT_ERRORS = (
    OperationalError, InterfaceError, psycopg.OperationalError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError, TimeoutError,
)


class ServiceError(Exception):
    """A refused request: `code` is machine-readable and stable, the message (`detail`) is for people.

    A subclass names a kind of refusal with its own default `code`; a raise may pass a more precise one
    (e.g. ServiceError("The message is empty.", "empty_text"))."""

    code = "invalid"

    def __init__(self, detail: str, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class InvalidField(ServiceError):
    """Refused input of a form; `field` names the input at fault, so the console shows the error beside it."""

    def __init__(self, detail: str, code: str, field: str):
        super().__init__(detail, code)
        self.field = field


class NotFound(ServiceError):
    """No such object, or not one the user may see (the same refusal for both)."""

    code = "not_found"


class UnknownTenant(NotFound):
    """No store with that slug (commands and services that take a slug)."""

    code = "unknown_tenant"


class NoActiveModel(NotFound):
    """No version of that model kind is active for its owner yet: train one first."""

    code = "no_active_model"


class RateLimited(ServiceError):
    """Too many requests of a visitor, an address or a store in a while (chatbot.sockets.ratelimit)."""

    code = "rate_limited"


class PermissionDenied(ServiceError):
    """The user may see the object but not do this (e.g. an agent where managers may)."""

    code = "forbidden"


class InvalidDataFile(ServiceError):
    """A data file that cannot be used as given; the detail says what is wrong and where."""

    code = "invalid_data_file"


class NotEnoughData(ServiceError):
    """Too few examples (or labels) to train a model on; the detail says what to add."""

    code = "not_enough_data"


class InvalidState(ServiceError):
    """The conversation is not in a state that allows this (e.g. resolving a resolved one)."""

    code = "invalid_state"


class AssignedToOther(ServiceError):
    """Another agent holds the conversation; the detail names her."""

    code = "assigned_to_other"

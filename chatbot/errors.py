"""The one family of errors a user can cause; turned into error frames or HTTP 4xx in one place."""


class ServiceError(Exception):
    """A refused request: `code` is machine-readable, the message is for people."""

    code = "invalid"

    def __init__(self, detail: str, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class NotFound(ServiceError):
    code = "not_found"


class UnknownTenant(NotFound, ValueError):
    code = "unknown_tenant"


class RateLimited(ServiceError):
    code = "rate_limited"


class PermissionDenied(ServiceError):
    code = "forbidden"


class InvalidState(ServiceError):
    """The conversation is not in a state that allows this (e.g. resolving a resolved one)."""

    code = "invalid_state"


class AssignedToOther(ServiceError):
    """Another agent holds the conversation; the detail names her."""

    code = "assigned_to_other"

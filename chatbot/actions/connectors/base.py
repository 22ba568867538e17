"""What every connector speaks: an action request in, one of five answers out.

A connector turns ActionRequest into a call of one kind of order system and its answer into ActionResult.
It never raises for the order system's failings (no answer, an error status, JSON it cannot read): those
are `failed` results with a word of detail, which services records and the visitor hears about.
"""
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlsplit

from chatbot.actions import outbound

ORDER_STATUS = "order_status"
CANCEL_ORDER = "cancel_order"
CHANGE_ADDRESS = "change_address"
START_RETURN = "start_return"
ACTIONS = (ORDER_STATUS, CANCEL_ORDER, CHANGE_ADDRESS, START_RETURN)
WRITE_ACTIONS = frozenset({CANCEL_ORDER, CHANGE_ADDRESS, START_RETURN})

STATES = ("pending", "processing", "shipped", "in_transit", "out_for_delivery", "delivered", "cancelled",
          "refunded", "returned")
# An order can still be cancelled or sent elsewhere only before it leaves the warehouse.
UNFULFILLED_STATES = frozenset({"pending", "processing"})
# And returned once it has reached the customer.
RETURNABLE_STATES = frozenset({"delivered"})

OK, NEEDS, NOT_FOUND, FORBIDDEN, FAILED = "ok", "needs", "not_found", "forbidden", "failed"
PARAMS = ("order_number", "email", "address")


@dataclass(frozen=True)
class ActionRequest:
    action: str
    tenant: str  # the store's slug
    conversation: int | None
    language: str
    params: dict  # order_number, email (or None), address (change_address)
    visitor: dict  # {"id": external id or None, "verified": bool, "email": str or None}
    idempotency_key: str = ""  # write actions: the same for a retry of the same confirmed request

    @property
    def order_number(self) -> str:
        return str(self.params.get("order_number") or "")


@dataclass
class ActionResult:
    status: str  # ok | needs | not_found | forbidden | failed
    data: dict = field(default_factory=dict)
    needs: list = field(default_factory=list)
    detail: str = ""  # for `failed`: timeout, status 502, bad answer ...

    @property
    def matched(self) -> bool:
        return self.status not in (NOT_FOUND, FORBIDDEN)


def failed(detail: str) -> ActionResult:
    return ActionResult(FAILED, detail=detail[:200])


class Connector:
    """One connection's way to its order system; subclasses set `kind`, `actions`, `credential_names`."""

    kind = ""
    actions: frozenset = frozenset()
    credential_names: tuple = ()  # every credential it takes
    credential_sets: tuple = ()  # the sets any one of which is enough (none: all of credential_names)

    def __init__(self, connection, credentials: dict):
        self.connection = connection
        self.credentials = credentials
        self.hosts = {(urlsplit(connection.url).hostname or "").lower()}

    def call(self, request: ActionRequest) -> ActionResult:
        raise NotImplementedError

    @classmethod
    def credentials_missing(cls, given: dict) -> list[str]:
        """The names still to give when `given` holds none of the kind's sets (the first set's), else []."""
        sets = cls.credential_sets or (cls.credential_names,)
        if any(all(given.get(name) for name in names) for names in sets):
            return []
        return [name for name in sets[0] if not given.get(name)]

    @classmethod
    def credentials_wanted(cls) -> str:
        """What a connection of this kind needs, in words ("token, or client_id and client_secret")."""
        return ", or ".join(" and ".join(names) for names in (cls.credential_sets or (cls.credential_names,)))

    @classmethod
    def address_refusal(cls, host: str) -> str:
        """Why a connection of this kind cannot be at `host` ("" when it can), said when a store connects."""
        return ""

    def http(self, method: str, url: str, *, headers: dict | None = None, body: bytes | None = None,
             timeout: float | None = None) -> outbound.Response:
        """A request to this connection's hosts within its timeout (outbound.OutboundError when none)."""
        return outbound.request(method, url, hosts=self.hosts, headers=headers, body=body,
                                timeout=self.connection.timeout if timeout is None else timeout)


def json_body(response: outbound.Response) -> dict | None:
    """The answer's JSON object, or None when it is not one."""
    try:
        value = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _text(value, limit: int = 300) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        return None
    return str(value)[:limit]


def _iso_date(value) -> str | None:
    """An ISO date or date-time as the date it names ("2026-12-08"), None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            return None


def order_clean(data: object, order_number: str) -> dict | None:
    """An order as the platform keeps it (the `order_status` data of docs/store-actions.md), or None when the
    answer is not one: no known state, or another order's number."""
    if not isinstance(data, dict) or data.get("state") not in STATES:
        return None
    number = _text(data.get("order_number"), 50)
    if number is None or _normal(number) != _normal(order_number):
        return None
    order = {"order_number": number, "state": data["state"]}
    for name in ("carrier", "tracking_number"):
        if (value := _text(data.get(name), 100)) is not None:
            order[name] = value
    url = _text(data.get("tracking_url"), 500)
    if url and urlsplit(url).scheme in ("https", "http"):
        order["tracking_url"] = url
    for name in ("placed_at", "estimated_delivery"):
        if (value := _iso_date(data.get(name))) is not None:
            order[name] = value
    items = data.get("items")
    if isinstance(items, list):
        order["items"] = [
            {"name": _text(i.get("name"), 200), "quantity": _quantity(i.get("quantity"))}
            for i in items[:50] if isinstance(i, dict) and _text(i.get("name"), 200)
        ]
    for name in ("shipping_address", "instructions", "return_label_url", "return_number"):
        if (value := _text(data.get(name), 500)) is not None:
            order[name] = value
    return order


def _quantity(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10_000 else 1


def _normal(number: str) -> str:
    return number.strip().lstrip("#").upper()

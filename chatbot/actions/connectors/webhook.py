"""The store's own endpoint, speaking the store actions webhook (docs/store-actions.md): a signed POST per call."""
import hashlib
import hmac
import json
import time

from chatbot.actions import outbound
from chatbot.actions.connectors.base import (
    ACTIONS, FAILED, FORBIDDEN, NEEDS, NOT_FOUND, OK, PARAMS, ActionRequest, ActionResult, Connector, failed,
    json_body, order_clean,
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Chatbot-Signature header's value: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, timestamp: str, body: bytes, given: str, *, tolerance: int = 300) -> bool:
    """What a store's endpoint checks (the demo's does): the signature, and a timestamp within `tolerance` s."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance
    except (TypeError, ValueError):
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given or "")


class WebhookConnector(Connector):
    kind = "webhook"
    actions = frozenset(ACTIONS)
    credential_names = ("secret",)

    def call(self, request: ActionRequest) -> ActionResult:
        body = json.dumps({
            "action": request.action, "tenant": request.tenant, "conversation": request.conversation,
            "language": request.language or None, "params": request.params, "visitor": request.visitor,
        }, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "chatbot-store-actions/1", "X-Chatbot-Timestamp": timestamp,
                   "X-Chatbot-Signature": signature(self.credentials.get("secret", ""), timestamp, body)}
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        try:
            response = self.http("POST", self.connection.url, headers=headers, body=body)
        except outbound.OutboundError as exc:
            return failed(exc.kind)
        if response.status != 200:
            return failed(f"status {response.status}")
        answer = json_body(response)
        if answer is None:
            return failed("bad json")
        return answer_read(answer, request)


def answer_read(answer: dict, request: ActionRequest) -> ActionResult:
    """The webhook's JSON answer as an ActionResult; anything the contract does not allow is a failure."""
    status = answer.get("status")
    if status in (NOT_FOUND, FORBIDDEN):
        return ActionResult(status)
    if status == NEEDS:
        needs = answer.get("params")
        if isinstance(needs, list) and needs and all(n in PARAMS for n in needs):
            return ActionResult(NEEDS, needs=list(dict.fromkeys(needs)))
        return failed("bad answer: needs names no known parameter")
    if status == OK:
        order = order_clean(answer.get("data"), request.order_number)
        if order is None:
            return failed("bad answer: no order state, or another order")
        return ActionResult(OK, data=order)
    return failed(f"bad answer: status {str(status)[:40]!r}" if status != FAILED else "the store said failed")

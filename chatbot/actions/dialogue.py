"""A store action over several turns: which action a message starts, what is still missing, the consent.

The bot gathers an action's parameters from the whole conversation (an order number or e-mail address
given in any of the visitor's messages counts), asks for what is missing at most ACTIONS_MAX_ASKS times
each, and for a write action asks "Do you want me to ...?" (Yes / No) after checking the order can still
be changed. What it is in the middle of lives in Conversation.action_state, so the next message (on any
worker) continues it; any change of hands ends it (chatbot.conversations.ownership).

`action_step` returns the bot's turn, or None when the message is not about a store action.
"""
from dataclasses import dataclass, field

from django.conf import settings

from chatbot import wording
from chatbot.actions import limits, services, texts
from chatbot.actions.connectors.base import (
    CANCEL_ORDER, CHANGE_ADDRESS, FAILED, NEEDS, OK, ORDER_STATUS, RETURNABLE_STATES, START_RETURN,
    UNFULFILLED_STATES, ActionRequest, ActionResult,
)
from chatbot.actions.params import address_in, order_numbers, params_found, params_mask
from chatbot.models import Conversation, HandoffReason, Message, StoreConnection, Tenant


@dataclass
class Step:
    """The bot's turn in an action: what it says, the buttons it offers, and whether people take over."""

    text: str
    action: str
    choices: list = field(default_factory=list)
    handoff: tuple | None = None  # (HandoffReason, reason in words)
    why: dict = field(default_factory=dict)  # grounding: the action, masked params, outcome, latency, result


@dataclass
class _Turn:
    tenant: Tenant
    connection: StoreConnection
    conversation: Conversation
    message: Message
    language: str
    state: dict

    def save(self, state: dict) -> None:
        """Keep what the bot is in the middle of (nothing: {}), unless people have the conversation now."""
        Conversation.objects.filter(pk=self.conversation.pk, status=Conversation.Status.BOT).update(action_state=state)


def _language(language: str, conversation: Conversation, tenant: Tenant, state: dict) -> str:
    """The language of the action's turns: the one it started in, else the message's, the conversation's, the
    store's main one (a language the platform does not write: English)."""
    return wording.written_in(state.get("language", ""), language, conversation.language, tenant.main_language)


def _required(action: str, verified: bool) -> list[str]:
    """The parameters to gather before calling: the order number; the e-mail address unless the store
    verified who the visitor is; the new address for change_address."""
    needed = ["order_number"] + ([] if verified else ["email"])
    return needed + (["address"] if action == CHANGE_ADDRESS else [])


def action_for(connection: StoreConnection, intent: str, confident: bool, text: str) -> str | None:
    """The action a message starts: its intent's, when the store mapped it; or, for a message that names
    an order number and whose intent the store did not map to another action, the order look-up."""
    mapped = connection.intent_actions.get(intent) if confident and intent else None
    if mapped:
        return mapped
    if intent in connection.intent_actions and confident:
        return None
    if order_numbers(connection.order_pattern, text) and ORDER_STATUS in connection.intent_actions.values():
        return ORDER_STATUS
    return None


def action_step(tenant: Tenant, message: Message, intent: str, intent_confidence: float | None,
                language: str, *, unserved: bool = False, wants_person: bool = False) -> Step | None:
    """The bot's turn when `message` starts or continues a store action; None when it does neither.

    `unserved`: the message is in a language the store does not serve; `wants_person`: the intent model
    read it as asking for a person. Either starts nothing, but may still answer the bot's question ("Non",
    "Via Roma 5, Milano" read as Italian; a bare e-mail address read as asking for a person)."""
    connection = services.connection_active(tenant.id)
    if connection is None:  # most stores: one query per message, nothing more
        return None
    conversation = Conversation.objects.select_related("visitor").get(pk=message.conversation_id)
    state = dict(conversation.action_state or {})
    if (unserved or wants_person) and not state:
        return None
    turn = _Turn(tenant, connection, conversation, message, _language(language, conversation, tenant, state), state)
    confident = intent_confidence is None or intent_confidence >= tenant.min_intent_confidence
    if state.get("confirming"):
        answer = texts.yes_no(message.text)
        if answer is True:
            return _write(turn, state["action"], state["params"])
        if answer is False:
            turn.save({})
            return Step(texts.text("declined", turn.language), state["action"])
        if action_for(connection, intent, confident, message.text) is None and len(message.text) <= 20:
            # A short answer that is neither: ask once more, buttons again.
            return Step(texts.text("yes_or_no", turn.language), state["action"], choices=_yes_no(turn.language))
        state = {}  # she moved on to something else
    if state.get("asking"):
        step = _continue(turn, state, intent, confident)
        if step is not None:
            return step
        state = {}
    action = action_for(connection, intent, confident, message.text)
    if action is None:
        if turn.state:
            turn.save({})
        return None
    return _gather(turn, {"action": action, "asks": {}, "from_seq": 0, "started_seq": message.seq})


def _continue(turn: _Turn, state: dict, intent: str, confident: bool) -> Step | None:
    """The visitor's answer to the bot's question for a parameter; None when she asked something else."""
    asked = state["asking"]
    if asked == "address":
        address = address_in(turn.message.text)
        if address:
            state = {**state, "params": {**state.get("params", {}), "address": address}}
    found = _found(turn, state)
    gave = (asked == "address" and state.get("params", {}).get("address")) or found.get(asked)
    other = action_for(turn.connection, intent, confident, turn.message.text)
    if not gave and not _answers_a_question(turn.message.text) and confident and intent and other != state["action"]:
        return None  # not an answer: an unrelated question, which the usual answer handles
    return _gather(turn, state, found)


def _answers_a_question(text: str) -> bool:
    """Looks like an answer to "what's your ...?" (an address, an e-mail, a number), not a question."""
    return "?" not in text and len(text) <= 200


def _found(turn: _Turn, state: dict) -> dict:
    texts_so_far = list(
        Message.objects.filter(conversation_id=turn.conversation.pk, sender=Message.Sender.VISITOR,
                               seq__gte=state.get("from_seq", 0), seq__lte=turn.message.seq)
        .order_by("seq").values_list("text", flat=True))
    return params_found(turn.connection.order_pattern, texts_so_far)


def _visitor(conversation: Conversation) -> dict:
    visitor = conversation.visitor
    return {"id": visitor.external_id or None, "verified": bool(visitor.external_id), "email": visitor.email or None}


def _gather(turn: _Turn, state: dict, found: dict | None = None) -> Step:
    """Ask for the first missing parameter (at most ACTIONS_MAX_ASKS times each), else look the order up.

    `found`: _found(turn, state), when the caller read it already."""
    action = state["action"]
    verified = bool(turn.conversation.visitor.external_id)
    found = _found(turn, state) if found is None else found
    # What she wrote wins over what the bot kept (the new address; the order number of an unmatched pair).
    params = {**{k: v for k, v in state.get("params", {}).items() if v}, **found}
    needed = list(dict.fromkeys(_required(action, verified) + state.get("needs", [])))
    missing = [name for name in needed if not params.get(name)]
    if missing:
        name = missing[0]
        if name == "address" and state.get("checked") != params["order_number"]:
            # The order and who she is are known: say now if its address can no longer change, before
            # she types a whole new one.
            order, step, why = _order_now(turn, state, params)
            step = step or _refusal(turn, action, order, why)
            if step is not None:
                return step
            state = {**state, "checked": params["order_number"]}
        asks = dict(state.get("asks", {}))
        asks[name] = asks.get(name, 0) + 1
        if asks[name] > settings.ACTIONS_MAX_ASKS:
            turn.save({})
            return Step(texts.text("gave_up", turn.language), action,
                        handoff=(HandoffReason.ACTION_INCOMPLETE, f"{action}: no {name.replace('_', ' ')} given"),
                        why={"action": action, "params": params_mask(params), "outcome": "incomplete"})
        turn.save({**state, "params": {k: v for k, v in params.items() if k == "address"}, "asking": name,
                   "asks": asks, "language": turn.language})
        question = f"ask_{name}_again" if asks[name] > 1 else f"ask_{name}"
        return Step(texts.text(question, turn.language), action,
                    why={"action": action, "params": params_mask(params), "outcome": f"asked for {name}"})
    return _look_up(turn, state, params)


def _call(turn: _Turn, action: str, params: dict, key: str = "") -> tuple[ActionResult, float, dict]:
    """One call of the store, unless the visitor or her address used up their unmatched look-ups."""
    subjects = {"visitor": str(turn.conversation.visitor_id), "ip": turn.conversation.visitor.ip_key}
    request = ActionRequest(action, turn.tenant.slug, turn.conversation.pk, turn.language, _sent(action, params),
                            _visitor(turn.conversation), key)
    if limits.misses_over(subjects):
        result = ActionResult("limited", detail="too many unmatched look-ups")
        services.call_record(turn.tenant.id, request, result, None, conversation_id=turn.conversation.pk,
                             message_id=turn.message.id)
        return result, 0.0, subjects
    result, latency = services.action_run(turn.connection, request, conversation_id=turn.conversation.pk,
                                          message_id=turn.message.id)
    if not result.matched:
        limits.miss_count(subjects)
    return result, latency, subjects


def _sent(action: str, params: dict) -> dict:
    sent = {"order_number": params.get("order_number"), "email": params.get("email")}
    if action == CHANGE_ADDRESS:
        sent["address"] = params.get("address")
    return sent


def _why(action: str, params: dict, result: ActionResult, latency: float) -> dict:
    why = {"action": action, "params": params_mask(params), "outcome": result.status, "latency_ms": latency}
    if result.status == OK:
        why["result"] = result.data
    elif result.detail:
        why["detail"] = result.detail
    return why


def _not_answered(turn: _Turn, action: str, state: dict, params: dict, result: ActionResult,
                  latency: float) -> Step | None:
    """The bot's turn after an answer that is not the order: a failure, a limit, a miss, or `needs`."""
    why = _why(action, params, result, latency)
    if result.status == FAILED:
        turn.save({})
        return Step(texts.text("unreachable", turn.language), action,
                    handoff=(HandoffReason.ACTION_FAILED, f"action failed: {action} ({result.detail})"), why=why)
    if result.status == "limited":
        turn.save({})
        return Step(texts.text("limited", turn.language), action,
                    handoff=(HandoffReason.ACTION_LIMITED, "too many unmatched order look-ups"), why=why)
    if result.status == NEEDS:
        asked = {n for n in state.get("needs", [])}
        if set(result.needs) <= asked or all(params.get(n) for n in result.needs):
            turn.save({})  # it asks for what it was given: a store that cannot be served by asking again
            return Step(texts.text("unreachable", turn.language), action,
                        handoff=(HandoffReason.ACTION_FAILED, f"action failed: {action} (needs what it got)"),
                        why=why)
        return _gather(turn, {**state, "needs": sorted(asked | set(result.needs))})
    if not result.matched:
        number = params.get("order_number", "")
        started = {**state, "from_seq": state.get("started_seq", 0)}
        if params.get("email") and _found(turn, started).get("email") != params["email"]:
            # The address came from earlier in the chat (another order's?): ask for this order's own.
            turn.save({"action": action, "asking": "email", "asks": {"email": 1}, "params": {"order_number": number},
                       "from_seq": turn.message.seq + 1, "started_seq": state.get("started_seq", 0),
                       "language": turn.language})
            return Step(texts.text("ask_email_for", turn.language, number=number), action, why=why)
        # Given again from the next message on, so the same pair is not tried twice; a new e-mail address
        # alone goes with the same order number.
        turn.save({"action": action, "asking": "email", "asks": {"email": 1}, "params": {"order_number": number},
                   "from_seq": turn.message.seq + 1, "started_seq": turn.message.seq + 1, "language": turn.language})
        return Step(texts.text("not_matched", turn.language), action, why=why)
    return None


def _order_now(turn: _Turn, state: dict, params: dict) -> tuple[dict | None, Step | None, dict]:
    """(the order as the store has it now, None, why); or (None, the bot's turn, why) when the store gave no
    order: a failure, a limit, a miss or more it needs."""
    result, latency, _ = _call(turn, ORDER_STATUS, params)
    step = _not_answered(turn, state["action"], state, params, result, latency)
    return (None if step else result.data), step, _why(ORDER_STATUS, params, result, latency)


def _refusal(turn: _Turn, action: str, order: dict, why: dict) -> Step | None:
    """The bot's turn when the write action can no longer (or cannot yet) be done to `order`; else None."""
    values = {"number": order["order_number"], "state": texts.state_said(order, turn.language)}
    if action in (CANCEL_ORDER, CHANGE_ADDRESS) and order["state"] not in UNFULFILLED_STATES:
        turn.save({})
        return Step(texts.text(f"too_late_{action}", turn.language, **values), action, why=why)
    if action == START_RETURN and order["state"] not in RETURNABLE_STATES:
        early = order["state"] in UNFULFILLED_STATES | {"shipped", "in_transit", "out_for_delivery"}
        turn.save({})
        return Step(texts.text("too_early_start_return" if early else "not_returnable", turn.language, **values),
                    action, why=why)
    return None


def _look_up(turn: _Turn, state: dict, params: dict) -> Step:
    """order_status: the answer. A write action: check it can still be done, then ask for consent."""
    action = state["action"]
    order, step, why = _order_now(turn, state, params)
    if step is not None:
        return step
    if action == ORDER_STATUS:
        turn.save({})
        return Step(texts.order_status(order, turn.language), action, why=why)
    step = _refusal(turn, action, order, why)
    if step is not None:
        return step
    turn.save({"action": action, "confirming": True, "params": params, "language": turn.language})
    question = texts.text(f"confirm_{action}", turn.language, number=order["order_number"],
                          items=texts.items_note(order), address=params.get("address", ""))
    return Step(question, action, choices=_yes_no(turn.language), why={**why, "outcome": "asked for consent"})


def _written(action: str, order: dict) -> bool:
    """Whether the order the store returned shows the write done: cancelled; still unfulfilled (its address
    could change); delivered or returned (a return could start)."""
    if action == CANCEL_ORDER:
        return order["state"] == "cancelled"
    if action == CHANGE_ADDRESS:
        return order["state"] in UNFULFILLED_STATES
    return order["state"] in RETURNABLE_STATES | {"returned"}


def _yes_no(language: str) -> list[str]:
    return [texts.text("yes", language), texts.text("no", language)]


def _write(turn: _Turn, action: str, params: dict) -> Step:
    """The confirmed write action, once: the visitor's "yes" keys it, so a retried answer does not act twice."""
    key = services.idempotency_key(turn.tenant.id, turn.conversation.pk, turn.message.id, action,
                                   params.get("order_number"))
    result, latency, _ = _call(turn, action, params, key)
    step = _not_answered(turn, action, {"action": action}, params, result, latency)
    if step is not None:
        return step
    turn.save({})
    order = result.data
    why = _why(action, params, result, latency)
    if not _written(action, order):  # e.g. the order left the warehouse between the question and the "yes"
        return Step(texts.text("unreachable", turn.language), action, why={**why, "detail": "not done"},
                    handoff=(HandoffReason.ACTION_FAILED, f"action failed: {action} (the store did not do it)"))
    return Step(texts.write_done(action, order, turn.language, params.get("address", "")), action, why=why)


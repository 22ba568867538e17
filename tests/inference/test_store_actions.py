"""The bot looks orders up and changes them over several turns, against the demo's own order system served
by a live server: slot filling, identity, consent, the limits on unmatched look-ups, and failures."""
import time

import pytest

from chatbot.actions import limits, services as actions
from chatbot.actions.demo_orders import DEMO_ACTIONS, DEMO_ORDER_PATTERN, demo_orders_seed
from chatbot.actions.dialogue import action_step
from chatbot.conversations import services
from chatbot.demo import load_json
from chatbot.models import ActionCall, Conversation, DemoOrder, Message
from inference.answer import _action_reply, answer_message
from inference.language import message_language
from tests.factories import ConversationFactory, TenantFactory, VisitorFactory
from tests.order_server import OrderServer

pytestmark = pytest.mark.django_db(transaction=True)

ANNA = "anna.keller@example.com"  # NW-482913, in transit with DHL


@pytest.fixture
def shop(live_server, settings):
    settings.ACTIONS_ALLOW_PRIVATE_HOSTS = True
    limits.reset_memory()
    demo_orders_seed(load_json("orders.json"))
    tenant = TenantFactory(slug="northwind", languages=["en", "es", "de", "fr"])
    actions.store_connect(tenant, "webhook", live_server.url + "/demo/orders/", intent_actions=DEMO_ACTIONS,
                          order_pattern=DEMO_ORDER_PATTERN, timeout=2)
    return tenant


def conversation_of(tenant, **visitor) -> Conversation:
    return ConversationFactory(visitor=VisitorFactory(tenant=tenant, **visitor))


class Chat:
    """A visitor's side: each message is stored as the widget would, then answered as a worker would."""

    def __init__(self, conversation: Conversation):
        self.conversation = conversation
        self.sent = 0

    def say(self, text: str, intent: str = "") -> Message:
        self.sent += 1
        message, _ = services.message_receive(self.conversation.id, text, f"c{self.sent}", ip="203.0.113.9")
        if intent:  # what the intent model would say; the store maps intents to actions
            language = message_language(self.conversation.tenant, text)
            step = action_step(self.conversation.tenant, message, intent, 0.95, language)
            assert step is not None, f"{text!r} started no action"
            _action_reply(message, step, time.perf_counter())
        else:
            answer_message(self.conversation.id, message.id)
        return self.reply_to(message)

    def reply_to(self, message: Message) -> Message:
        return Message.objects.filter(reply_to=message).exclude(sender=Message.Sender.VISITOR).order_by("seq").first()


def test_an_order_number_then_the_orders_email_gets_its_real_state_and_tracking(shop):
    chat = Chat(conversation_of(shop))
    asked = chat.say("Where is my order NW-482913?")
    assert "e-mail" in asked.text and asked.model_version == "action:order_status"
    reply = chat.say(ANNA)
    assert reply.text.startswith("Your order NW-482913 is on its way with DHL.")
    assert "https://www.dhl.com/" in reply.text and "Expected delivery:" in reply.text
    why = reply.grounding[0]
    assert why["action"] == "order_status" and why["outcome"] == "ok" and why["latency_ms"] > 0
    assert why["params"] == {"order_number": "NW-482913", "email": "a***@example.com"}
    assert why["result"]["tracking_number"] == "JD014600006281934712"
    assert ActionCall.objects.get(outcome="ok").conversation_id == chat.conversation.id
    chat.conversation.refresh_from_db()
    assert chat.conversation.status == "bot" and chat.conversation.action_state == {}


def test_the_order_number_is_asked_for_and_found_in_a_later_message(shop):
    chat = Chat(conversation_of(shop))
    assert "order number" in chat.say("where's my parcel?", intent="track_order").text
    reply = chat.say("It's NW-100477, and my e-mail is j.martin@example.fr")
    assert reply.text.startswith("Your order NW-100477 has shipped with UPS.")


def test_the_visitors_language_is_the_replys(shop):
    chat = Chat(conversation_of(shop))
    asked = chat.say("¿Dónde está mi pedido NW-100318?")
    assert asked.text.startswith("Para proteger tu pedido")
    reply = chat.say("maria.garcia@example.es")
    assert reply.text.startswith("Tu pedido NW-100318 se ha recibido")


def test_a_wrong_email_tells_nothing_and_both_are_asked_again(shop):
    chat = Chat(conversation_of(shop))
    chat.say("Where is my order NW-482913?")
    reply = chat.say("someone@else.example")
    assert reply.text.startswith("I couldn't find an order")
    assert "NW-482913" not in reply.text and "DHL" not in reply.text
    assert reply.grounding[0]["outcome"] == "forbidden" and "result" not in reply.grounding[0]
    # not found and forbidden read the same
    other = Chat(conversation_of(shop))
    other.say("Where is my order NW-999999?")
    assert other.say(ANNA).text == reply.text
    # the right pair afterwards is answered
    assert chat.say(f"Sorry: NW-482913 {ANNA}").text.startswith("Your order NW-482913")


def test_the_bot_asks_twice_then_hands_off(shop):
    chat = Chat(conversation_of(shop))
    assert "order number" in chat.say("where is my order", intent="track_order").text
    assert "still need your order number" in chat.say("I don't know").text
    reply = chat.say("no idea, sorry")
    assert reply.text.startswith("I need those details")
    chat.conversation.refresh_from_db()
    assert (chat.conversation.status, chat.conversation.handoff_code) == ("waiting", "action_incomplete")


def test_enumeration_is_cut_off_by_the_visitors_unmatched_look_ups_and_nothing_is_disclosed(shop, settings):
    settings.ACTIONS_MISSES_PER_VISITOR = [3, 3600]
    chat = Chat(conversation_of(shop))
    chat.say("Where is my order NW-100001? guess@example.com")
    disclosed = []
    for n in range(2, 10):
        chat.conversation.refresh_from_db()
        if chat.conversation.status != "bot":
            break
        reply = chat.say(f"NW-1000{n:02d} guess@example.com")
        disclosed += [r for r in (reply.grounding or []) if r.get("result")]
    assert disclosed == []
    assert ActionCall.objects.filter(outcome="not_matched").count() == 3
    assert ActionCall.objects.filter(outcome="limited").count() == 1
    chat.conversation.refresh_from_db()
    assert (chat.conversation.status, chat.conversation.handoff_code) == ("waiting", "action_limited")


def test_the_address_limit_counts_across_visitors(shop, settings):
    settings.ACTIONS_MISSES_PER_IP = [2, 3600]
    for n in range(2):
        chat = Chat(conversation_of(shop))
        chat.say(f"Where is my order NW-20000{n}? guess@example.com")
    chat = Chat(conversation_of(shop))
    reply = chat.say(f"Where is my order NW-482913? {ANNA}")  # even the right pair: the address is spent
    assert reply.text.startswith("I can't look up any more orders")


def test_cancelling_asks_for_consent_and_a_yes_cancels_once(shop):
    chat = Chat(conversation_of(shop))
    question = chat.say("Please cancel order NW-100245, my e-mail is li.wei@example.com", intent="cancel_order")
    assert question.text == "Do you want me to cancel order NW-100245 (Summit 45L Backpack)?"
    assert question.choices == ["Yes", "No"]
    assert DemoOrder.objects.get(number="NW-100245").data["state"] == "processing"
    done = chat.say("Yes")
    assert done.text.startswith("Done: order NW-100245 is cancelled.")
    assert DemoOrder.objects.get(number="NW-100245").data["state"] == "cancelled"
    call = ActionCall.objects.get(action="cancel_order")
    assert call.outcome == "ok" and call.idempotency_key
    # a retry of the same answer (a redelivered task) acts no more
    yes = Message.objects.get(conversation=chat.conversation, text="Yes")
    assert answer_message(chat.conversation.id, yes.id).startswith("skipped")
    assert ActionCall.objects.filter(action="cancel_order").count() == 1


def test_no_changes_nothing_and_a_typed_answer_in_another_language_works(shop):
    chat = Chat(conversation_of(shop))
    question = chat.say("Annule la commande NW-101379 s'il vous plaît, claire.d@example.fr", intent="cancel_order")
    assert question.text.startswith("Voulez-vous que j'annule la commande NW-101379")
    assert question.choices == ["Oui", "Non"]
    reply = chat.say("Non")  # read as Italian, a language the store does not serve: still the answer
    assert reply.text == "D'accord, je n'ai rien changé."
    assert DemoOrder.objects.get(number="NW-101379").data["state"] == "processing"
    chat.conversation.refresh_from_db()
    assert chat.conversation.status == "bot"


def test_a_shipped_order_cannot_be_cancelled_and_is_not_asked_about(shop):
    chat = Chat(conversation_of(shop))
    reply = chat.say(f"cancel NW-482913 {ANNA}", intent="cancel_order")
    assert reply.text == "Order NW-482913 is on its way, so it can't be cancelled any more."
    assert reply.choices == []
    assert not ActionCall.objects.filter(action="cancel_order").exists()


def test_changing_the_address_asks_for_it_then_for_consent(shop):
    chat = Chat(conversation_of(shop))
    asked = chat.say("I need to change the delivery address of NW-101930, george.h@example.co.uk",
                     intent="change_order")
    assert asked.text.startswith("What's the new shipping address?")
    question = chat.say("5 Broad St, Oxford OX1 3AJ, United Kingdom")
    assert question.text == ("Do you want me to send order NW-101930 to this address instead: "
                             "5 Broad St, Oxford OX1 3AJ, United Kingdom?")
    assert chat.say("yes").text == "Done: order NW-101930 will be sent to 5 Broad St, Oxford OX1 3AJ, United Kingdom."
    assert DemoOrder.objects.get(number="NW-101930").data["shipping_address"].startswith("5 Broad St")


def test_a_shipped_orders_address_change_is_refused_before_she_types_a_new_address(shop):
    """Once the order and her e-mail are known, the bot looks it up before asking for an address it could
    not use: typing a whole address to hear "too late" wastes her time."""
    chat = Chat(conversation_of(shop))
    asked = chat.say("I want to change the delivery address of NW-482913", intent="change_order")
    assert asked.text == "To keep your order private, what e-mail address did you use for it?"
    reply = chat.say(ANNA)
    assert reply.text == "Order NW-482913 is on its way, so its address can't be changed any more."
    assert reply.choices == []
    assert list(ActionCall.objects.values_list("action", flat=True)) == ["order_status"]
    chat.conversation.refresh_from_db()
    assert chat.conversation.action_state == {}
    # a new question afterwards is answered as usual, not read as the address
    assert "is on its way with DHL" in chat.say("Where is my order NW-482913?", intent="order_status").text


def test_a_return_of_a_delivered_order_gives_the_next_steps(shop):
    chat = Chat(conversation_of(shop))
    chat.say("I want to return order NW-100634 sofia.rossi@example.it", intent="start_return")
    done = chat.say("yes")
    assert "Your return for order NW-100634 has started." in done.text
    assert "Return number: R-100634." in done.text


def test_an_unrelated_question_while_asked_for_the_email_drops_the_action(shop):
    chat = Chat(conversation_of(shop))
    chat.say("Where is my order NW-482913?")
    message, _ = services.message_receive(chat.conversation.id, "What payment methods do you accept?", "other")
    assert action_step(shop, message, "payment_methods", 0.97, "en") is None
    chat.conversation.refresh_from_db()
    assert chat.conversation.action_state == {}


def test_a_verified_visitor_is_not_asked_for_her_email(shop):
    chat = Chat(conversation_of(shop, external_id="cust-7", email=ANNA))
    reply = chat.say("Where is my order NW-482913?")
    assert reply.text.startswith("Your order NW-482913 is on its way")


def test_an_order_system_that_fails_tells_the_visitor_and_hands_off(shop):
    server = OrderServer(answer=lambda seen: (500, b"", {})).start()
    try:
        actions.store_connect(shop, "webhook", server.url + "/orders")
        chat = Chat(conversation_of(shop))
        reply = chat.say(f"Where is my order NW-482913? {ANNA}")
    finally:
        server.stop()
    assert reply.text.startswith("I can't reach our order system right now")
    chat.conversation.refresh_from_db()
    assert (chat.conversation.status, chat.conversation.handoff_code) == ("waiting", "action_failed")
    assert "action failed: order_status (status 500)" == chat.conversation.handoff_reason
    assert ActionCall.objects.get().detail == "status 500"


def test_an_order_system_that_hangs_still_answers_within_its_timeout(shop):
    server = OrderServer(answer=lambda seen: (200, {"status": "not_found"}, {}), delay=5).start()
    try:
        actions.store_connect(shop, "webhook", server.url + "/orders", timeout=1)
        chat = Chat(conversation_of(shop))
        started = time.monotonic()
        reply = chat.say(f"Where is my order NW-482913? {ANNA}")
        took = time.monotonic() - started
    finally:
        server.stop()
    assert reply.text.startswith("I can't reach our order system")
    assert took < 2.5


def test_without_a_connection_order_questions_go_the_usual_way(shop):
    actions.store_disconnect(shop)
    chat = Chat(conversation_of(shop))
    reply = chat.say("Where is my order NW-482913?")
    assert reply is None or not reply.model_version.startswith("action:")


def test_a_second_order_in_the_same_chat_is_asked_its_own_email_not_refused(shop):
    chat = Chat(conversation_of(shop))
    chat.say("Where is my order NW-482913?")
    assert chat.say(ANNA).text.startswith("Your order NW-482913")
    asked = chat.say("Please cancel order NW-100245", intent="cancel_order")
    assert asked.text == "What e-mail address did you use for order NW-100245?"
    question = chat.say("li.wei@example.com")
    assert question.text == "Do you want me to cancel order NW-100245 (Summit 45L Backpack)?"


def test_after_a_miss_a_new_email_alone_goes_with_the_same_order_number(shop):
    chat = Chat(conversation_of(shop))
    chat.say("Where is my order NW-482913? anna@wrong.example")
    assert chat.say("anna.keller@example.com").text.startswith("Your order NW-482913 is on its way")


def test_the_bots_words_around_actions_are_written_in_every_language_the_platform_writes():
    import string

    from chatbot import wording
    from chatbot.actions import texts

    assert set(texts.TEXTS) == set(wording.LANGUAGES)
    english = texts.TEXTS["en"]
    for language, table in texts.TEXTS.items():
        assert set(table) == set(english), language
        assert set(table["states"]) == set(english["states"]), language
        for name, text in table.items():
            if isinstance(text, str):  # the same placeholders as the English, so every value is said
                fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
                assert fields == {f for _, f, _, _ in string.Formatter().parse(english[name]) if f}, (language, name)

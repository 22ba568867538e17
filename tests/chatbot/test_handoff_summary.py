"""The hand-off summary at the top of a handed-off conversation, as the agent socket's `transcript` carries
it: what she wants, the details she gave (masked where the store says so), her mood, what the bot did."""
import pytest
from channels.db import database_sync_to_async

from chatbot.conversations import ownership
from chatbot.conversations.selectors import transcript
from chatbot.conversations.summary import handoff_summary
from chatbot.models import Conversation
from tests.chatbot.sockets import agent_socket, frame_where
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


def handed_off(tenant) -> Conversation:
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=tenant), last_seq=0)
    seq = iter(range(1, 100))
    first = MessageFactory(conversation=conversation, seq=next(seq), sender="visitor", sentiment="neutral",
                           text="Where is my order NW-482913?", intent="track_order", intent_confidence=0.93)
    MessageFactory(conversation=conversation, seq=next(seq), sender="bot", reply_to=first,
                   text="To keep your order private, what e-mail address did you use for it?",
                   model_version="action:order_status",
                   grounding=[{"action": "order_status", "params": {"order_number": "NW-482913"},
                               "outcome": "asked for email"}])
    second = MessageFactory(conversation=conversation, seq=next(seq), sender="visitor", sentiment="negative",
                            text="anna.keller@example.com, call me on +49 30 1234567 card 4111 1111 1111 1111",
                            intent="track_order")
    MessageFactory(conversation=conversation, seq=next(seq), sender="bot", reply_to=second,
                   text="I can't reach our order system right now, so I'm passing you to a member of our team.",
                   model_version="action:order_status",
                   grounding=[{"action": "order_status", "outcome": "failed", "detail": "timeout"}])
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=4, language="en")
    ownership.conversation_hand_off(conversation.pk, "action failed: order_status (timeout)", reply_to_id=second.id,
                                    code="action_failed")
    return Conversation.objects.select_related("tenant").get(pk=conversation.pk)


def test_the_summary_says_what_she_wants_what_she_gave_her_mood_and_what_the_bot_did():
    tenant = TenantFactory(masked_details=["card", "phone"])
    conversation = handed_off(tenant)
    summary = handoff_summary(conversation, transcript(conversation.id))
    assert summary["wants"]["intent"] == "track_order"
    assert summary["wants"]["message"].startswith("anna.keller@example.com")
    details = {d["kind"]: d["value"] for d in summary["details"]}
    assert details["order"] == "NW-482913" and details["email"] == "anna.keller@example.com"
    assert details["phone"] == "+4•••67" and details["card"] == "41•••11"  # masked: the store says so
    assert summary["mood"] == {"turns": ["neutral", "negative"], "trend": "worse", "last": "negative"}
    assert summary["bot"]["replies"] == 2 and summary["bot"]["fallbacks"] == 0
    assert summary["bot"]["actions"][-1] == {"action": "order_status", "outcome": "failed", "detail": "timeout",
                                             "state": ""}
    assert summary["handoff"] == {"code": "action_failed", "label": "An action failed",
                                  "reason": "action failed: order_status (timeout)"}


def test_a_conversation_the_bot_never_handed_off_has_none():
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=TenantFactory()))
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text="hi")
    assert handoff_summary(conversation, transcript(conversation.id)) is None


async def test_agents_get_it_with_the_transcript():
    tenant = await db(TenantFactory)()
    ada = await db(agent_of)(tenant, username="ada")
    conversation = await db(handed_off)(tenant)
    comm, _ = await agent_socket(ada)
    await comm.send_json_to({"type": "open", "conversation": conversation.id})
    frame = await frame_where(comm, type="transcript")
    assert frame["summary"]["handoff"]["code"] == "action_failed"
    assert {"kind": "card", "value": "41•••11"} in frame["summary"]["details"]  # the default masks cards
    await comm.disconnect()

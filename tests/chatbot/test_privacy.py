"""Data-subject requests: export everything stored about a visitor, and erase her while keeping anonymous counts."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from chatbot.conversations import ownership, privacy, services
from chatbot.errors import NotFound
from chatbot.models import AssistSuggestion, Conversation, ConversationTransition, Feedback, Message, Visitor
from tests.factories import TenantFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)

PRIVATE = "order 55123 for Ann Smith, 1 Main St"


def chat(tenant, external_id: str = "cust-42") -> dict:
    """A visitor who wrote, got a bot reply, rated it, left her address, was helped by an agent and rated it all."""
    session = services.visitor_session_open(tenant, None, external_id=external_id)
    conversation = session.conversation
    asked, _ = services.message_receive(conversation.id, f"where is my {PRIVATE}?", "c-1")
    reply = services.bot_reply_store(asked.id, f"Your {PRIVATE} ships tomorrow.", model_version="kb")
    services.feedback_visitor_rate(conversation.id, reply.id, "down")
    agent = agent_of(tenant)
    services.feedback_agent_record(agent, reply.id, "down", correct_reply=f"Sorry {PRIVATE}", correct_intent="where")
    AssistSuggestion.objects.create(conversation=conversation, message=asked, texts=[f"About {PRIVATE}"])
    services.visitor_contact_leave(conversation.id, "ann@example.com")
    services.agent_message_send(agent, conversation.id, f"Checking {PRIVATE}", "a-1")
    services.agent_message_send(agent, conversation.id, f"note: {PRIVATE}", "a-2", private=True)
    ownership.conversation_resolve(conversation.id, agent=agent)
    services.conversation_rate(conversation.id, 4)
    return {"visitor": Visitor.objects.get(pk=session.visitor.id), "conversation": conversation, "reply": reply}


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_export_holds_everything_stored_about_her():
    tenant = TenantFactory()
    world = chat(tenant)
    other = chat(tenant, external_id="cust-7")  # another visitor's data stays out of it
    for ref in (str(world["visitor"].id), world["visitor"].token, "cust-42"):
        data = json.loads(run("export_visitor", tenant.slug, ref))
        assert data["tenant"] == tenant.slug and len(data["visitors"]) == 1
        visitor = data["visitors"][0]
        assert (visitor["id"], visitor["email"], visitor["external_id"]) == (world["visitor"].id, "ann@example.com",
                                                                           "cust-42")
        [conversation] = visitor["conversations"]
        assert (conversation["id"], conversation["csat"], conversation["status"]) == (
            world["conversation"].id, 4, "resolved")
        texts = [m["text"] for m in conversation["messages"]]
        assert f"where is my {PRIVATE}?" in texts and f"note: {PRIVATE}" in texts
        assert {f["source"] for f in conversation["feedback"]} == {"visitor", "agent"}
        assert conversation["suggestions"][0]["texts"] == [f"About {PRIVATE}"]
        assert conversation["transitions"] and all("created_at" in t for t in conversation["transitions"])
        assert {m["conversation_id"] for m in conversation["messages"]} == {world["conversation"].id}
        assert other["conversation"].id != world["conversation"].id
    assert json.dumps(data)  # JSON through and through


def test_delete_erases_text_feedback_and_personal_fields_and_keeps_counts():
    tenant = TenantFactory()
    world = chat(tenant)
    other = chat(tenant, external_id="cust-7")
    conversation = world["conversation"]
    before = {
        "messages": list(Message.objects.filter(conversation=conversation).order_by("seq")
                         .values_list("seq", "sender", "created_at", "intent", "model_version", "private")),
        "conversation": Conversation.objects.filter(pk=conversation.id).values(
            "status", "csat", "created_at", "resolved_at", "handoff_reason").get(),
        "transitions": ConversationTransition.objects.filter(conversation=conversation).count(),
    }
    counts = json.loads(run("delete_visitor", tenant.slug, "cust-42", "--yes"))
    assert counts["visitors"] == 1 and counts["conversations"] == 1 and counts["messages"] == len(before["messages"])
    assert counts["feedback_deleted"] == 1 and counts["feedback_erased"] == 1

    visitor = Visitor.objects.get(pk=world["visitor"].id)
    assert (visitor.email, visitor.external_id) == ("", "")
    assert visitor.token != world["visitor"].token  # the old device no longer finds her
    messages = Message.objects.filter(conversation=conversation).order_by("seq")
    assert set(messages.values_list("text", flat=True)) == {privacy.ERASED_TEXT}
    assert list(messages.values_list("seq", "sender", "created_at", "intent", "model_version", "private")) \
        == before["messages"]
    assert Conversation.objects.filter(pk=conversation.id).values(
        "status", "csat", "created_at", "resolved_at", "handoff_reason").get() == before["conversation"]
    assert Conversation.objects.get(pk=conversation.id).last_message_text == ""
    assert ConversationTransition.objects.filter(conversation=conversation).count() == before["transitions"]
    assert not Feedback.objects.filter(message__conversation=conversation, source="visitor").exists()
    kept = Feedback.objects.get(message__conversation=conversation, source="agent")
    assert (kept.rating, kept.corrected_intent, kept.correction, kept.original_reply) == ("down", "where", "", "")
    assert AssistSuggestion.objects.get(conversation=conversation).texts == []

    # Nothing of hers is left anywhere; the other visitor is untouched.
    export = run("export_visitor", tenant.slug, str(visitor.id))
    assert PRIVATE not in export and "ann@example.com" not in export and "cust-42" not in export
    assert PRIVATE in run("export_visitor", tenant.slug, "cust-7")
    assert Message.objects.filter(conversation=other["conversation"], text__contains=PRIVATE).count() == 4
    with pytest.raises(NotFound):
        privacy.visitors_of(tenant, "cust-42")


def test_commands_refuse_unknown_visitors_and_other_stores_visitors():
    tenant, elsewhere = TenantFactory(), TenantFactory()
    world = chat(tenant)
    for command in (("export_visitor",), ("delete_visitor", "--yes")):
        for ref in ("nobody", "999999999", str(world["visitor"].id) + "\x00", "", "9" * 40):
            with pytest.raises(CommandError):
                run(command[0], tenant.slug, ref, *command[1:])
        with pytest.raises(CommandError, match="No visitor"):
            run(command[0], elsewhere.slug, world["visitor"].token, *command[1:])
        with pytest.raises(CommandError, match="unknown tenant"):
            run(command[0], "no-such-store", world["visitor"].token, *command[1:])
    assert Message.objects.filter(text__contains=PRIVATE).count() == 4


def test_delete_asks_before_erasing(monkeypatch):
    tenant = TenantFactory()
    world = chat(tenant)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing erased"):
        run("delete_visitor", tenant.slug, world["visitor"].token)
    assert Visitor.objects.get(pk=world["visitor"].id).email == "ann@example.com"
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    run("delete_visitor", tenant.slug, world["visitor"].token)
    assert Visitor.objects.get(pk=world["visitor"].id).email == ""


def test_erasing_a_visitor_by_her_token_blanks_her_messages():
    tenant = TenantFactory()
    session = services.visitor_session_open(tenant, None)
    asked, _ = services.message_receive(session.conversation.id, PRIVATE, "c-1")
    privacy.visitor_erase(tenant, session.visitor.token)
    assert Message.objects.get(pk=asked.id).text == ""

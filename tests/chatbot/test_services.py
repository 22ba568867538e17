"""Services: validation, idempotency, seq order, hand-off and housekeeping."""
from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.conversations import ownership, services
from chatbot.errors import ServiceError
from chatbot.models import Conversation, Message
from tests.factories import ConversationFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_tenant_slug_comes_from_name_and_stays_unique():
    first = services.tenant_create("Acme Outdoor", ["https://acme.example/"])
    second = services.tenant_create("Acme Outdoor", [])
    assert (first.slug, second.slug) == ("acme-outdoor", "acme-outdoor-2")
    assert first.allowed_origins == ["https://acme.example"]
    assert first.public_key.startswith("pk_") and first.public_key != second.public_key


@pytest.mark.parametrize("name, origins, code", [("", [], "name_required"), ("Shop", ["acme.example"], "invalid_origin")])
def test_tenant_create_refuses_bad_input(name, origins, code):
    with pytest.raises(ServiceError) as exc:
        services.tenant_create(name, origins)
    assert exc.value.code == code


def test_origin_check_is_exact_unless_wildcard():
    tenant = TenantFactory(allowed_origins=["https://shop.example"])
    assert tenant.origin_allowed("https://shop.example")
    assert tenant.origin_allowed("HTTPS://SHOP.EXAMPLE/")
    assert not tenant.origin_allowed("https://shop.example.evil.com")
    assert not tenant.origin_allowed("http://shop.example")
    assert TenantFactory(allowed_origins=["*"]).origin_allowed("https://anything.example")


def test_session_reuses_open_conversation_and_starts_new_after_resolve():
    tenant = TenantFactory()
    first = services.visitor_session_open(tenant, None)
    again = services.visitor_session_open(tenant, first.visitor.token)
    assert not again.new_visitor and again.conversation == first.conversation
    Conversation.objects.filter(pk=first.conversation.pk).update(status=Conversation.Status.RESOLVED)
    later = services.visitor_session_open(tenant, first.visitor.token)
    assert later.conversation != first.conversation


def test_resend_with_same_client_id_stores_nothing():
    conversation = ConversationFactory()
    one, created_one = services.message_receive(conversation.id, "hi", "c1")
    two, created_two = services.message_receive(conversation.id, "hi again", "c1")
    assert (created_one, created_two) == (True, False)
    assert one == two and Message.objects.count() == 1


def test_bot_reply_is_stored_once_per_visitor_message():
    conversation = ConversationFactory()
    visitor_message, _ = services.message_receive(conversation.id, "hi", "c1")
    reply = services.bot_reply_store(visitor_message.id, "Hello!", model_version="t", score=0.9)
    assert reply.seq == 2 and reply.reply_to == visitor_message
    assert services.bot_reply_store(visitor_message.id, "Hello again!") is None
    assert Message.objects.filter(sender="bot").count() == 1


def test_hand_off_stops_the_bot_and_tells_the_visitor():
    conversation = ConversationFactory()
    visitor_message, _ = services.message_receive(conversation.id, "a person please", "c1")
    note = ownership.conversation_hand_off(conversation.id, "visitor asked for a person", visitor_message.id,
                                         code="asked_for_person")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING and conversation.assigned_agent is None
    # Nobody has the console open: the visitor is told so.
    assert note.sender == "system" and note.text == conversation.tenant.no_agent_text
    assert ownership.conversation_hand_off(conversation.id, "again", code="asked_for_person") is None
    assert services.bot_reply_store(visitor_message.id, "too late") is None


def test_message_to_resolved_conversation_reopens_it_for_the_bot():
    conversation = ConversationFactory(status=Conversation.Status.RESOLVED, resolved_at=timezone.now())
    services.message_receive(conversation.id, "one more thing", "c1")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT and conversation.resolved_at is None


def test_idle_conversations_are_resolved():
    idle, busy = ConversationFactory(), ConversationFactory()
    Conversation.objects.filter(pk=idle.pk).update(updated_at=timezone.now() - timedelta(hours=30))
    assert services.conversations_resolve_idle(hours=24) == 1
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert idle.status == Conversation.Status.RESOLVED and busy.status == Conversation.Status.BOT

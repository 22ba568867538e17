"""The Django admin: it shows visitors' words escaped, and never writes messages or changes who owns a
conversation (the services do; a message added here once broke (conversation, seq))."""
import pytest
from django.test import Client

from chatbot.models import Conversation, ConversationTransition, Message
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, UserFactory, VisitorFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def conversation():
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=TenantFactory()), last_seq=2,
                                       last_message_text=IMG, handoff_reason=SCRIPT)
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text=SCRIPT, intent=IMG)
    MessageFactory(conversation=conversation, seq=2, sender="bot", text=IMG)
    return conversation


def assert_escaped(html: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert SCRIPT not in html and IMG not in html


def test_conversation_change_page_shows_messages_escaped(root, conversation):
    response = root.get(f"/admin/chatbot/conversation/{conversation.id}/change/")
    assert response.status_code == 200
    assert_escaped(response.content.decode())


@pytest.mark.parametrize("seq", [1, 2])
def test_message_change_page_shows_text_escaped(root, conversation, seq):
    message = conversation.messages.get(seq=seq)
    response = root.get(f"/admin/chatbot/message/{message.id}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    escaped = {1: "&lt;script&gt;alert(1)&lt;/script&gt;", 2: "&lt;img src=x onerror=alert(1)&gt;"}[seq]
    assert escaped in html and SCRIPT not in html and IMG not in html


def test_message_and_conversation_lists_show_text_escaped(root, conversation):
    assert_escaped(root.get("/admin/chatbot/message/").content.decode())
    html = root.get("/admin/chatbot/conversation/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html  # the hand-off reason


# --- read-only: messages and ownership ------------------------------------------------------------


def test_adding_a_message_in_the_admin_is_refused(root, conversation):
    assert root.get("/admin/chatbot/message/add/").status_code == 403
    response = root.post("/admin/chatbot/message/add/", {
        "conversation": conversation.id, "seq": 2, "sender": "agent", "text": "typed in the admin"})
    assert response.status_code == 403
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert b"/admin/chatbot/message/add/" not in root.get("/admin/chatbot/message/").content


def test_changing_or_deleting_a_message_in_the_admin_is_refused(root, conversation):
    message = conversation.messages.get(seq=1)
    response = root.post(f"/admin/chatbot/message/{message.id}/change/", {
        "conversation": conversation.id, "seq": 1, "sender": "visitor", "text": "rewritten"})
    assert response.status_code == 403
    assert root.post(f"/admin/chatbot/message/{message.id}/delete/", {"post": "yes"}).status_code == 403
    message.refresh_from_db()
    assert message.text == SCRIPT


def test_changing_a_conversations_owner_in_the_admin_is_refused(root, conversation):
    page = root.get(f"/admin/chatbot/conversation/{conversation.id}/change/").content.decode()
    assert 'name="status"' not in page and 'name="assigned_agent"' not in page  # shown, not a form field
    agent = UserFactory()
    response = root.post(f"/admin/chatbot/conversation/{conversation.id}/change/", {
        "tenant": conversation.tenant_id, "visitor": conversation.visitor_id, "status": "resolved",
        "assigned_agent": agent.pk, "last_seq": 2, "unread": 0,
        "messages-TOTAL_FORMS": "1", "messages-INITIAL_FORMS": "0",
        "messages-0-seq": "3", "messages-0-sender": "agent", "messages-0-text": "inline message",
    })
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (Conversation.Status.BOT, None)
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert not ConversationTransition.objects.exists()


def test_adding_or_deleting_a_conversation_in_the_admin_is_refused(root, conversation):
    assert root.get("/admin/chatbot/conversation/add/").status_code == 403
    response = root.post("/admin/chatbot/conversation/add/", {
        "tenant": conversation.tenant_id, "visitor": conversation.visitor_id, "status": "human"})
    assert response.status_code == 403
    assert root.post(f"/admin/chatbot/conversation/{conversation.id}/delete/", {"post": "yes"}).status_code == 403
    assert Conversation.objects.count() == 1


def test_bulk_delete_action_is_not_offered_for_messages(root, conversation):
    ids = list(conversation.messages.values_list("id", flat=True))
    response = root.post("/admin/chatbot/message/", {"action": "delete_selected", "_selected_action": ids,
                                                     "post": "yes"})
    assert response.status_code in (200, 302, 403)
    assert Message.objects.filter(id__in=ids).count() == 2


def test_staff_of_no_store_sees_no_conversations(conversation):
    from django.contrib.auth.models import Permission

    client = Client()
    staff = UserFactory(is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_conversation", "view_message"]))
    client.force_login(staff)
    assert client.get("/admin/chatbot/conversation/").context["cl"].result_count == 0
    assert client.get("/admin/chatbot/message/").context["cl"].result_count == 0
    assert client.get(f"/admin/chatbot/conversation/{conversation.id}/change/").status_code == 302

"""Who owns a conversation: every move of chatbot.conversations.ownership, who made it and why, and the races."""
import threading
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chatbot import events

from chatbot.conversations import journal, ownership, services
from chatbot.errors import AssignedToOther, InvalidState, NotFound
from chatbot.models import Conversation, ConversationTransition, Message, Visitor
from chatbot.conversations.payloads import display_name
from tests.factories import ConversationFactory, TenantFactory, VisitorFactory, agent_of
from tests.races import race

S = Conversation.Status
ALL = [S.BOT, S.WAITING, S.HUMAN, S.RESOLVED]
ALLOWED = {
    (S.BOT, S.WAITING), (S.BOT, S.HUMAN), (S.BOT, S.RESOLVED),
    (S.WAITING, S.HUMAN), (S.WAITING, S.BOT), (S.WAITING, S.RESOLVED),
    (S.HUMAN, S.HUMAN), (S.HUMAN, S.BOT), (S.HUMAN, S.RESOLVED),
    (S.RESOLVED, S.BOT),
}


@pytest.fixture
def tenant(db):
    return TenantFactory()


@pytest.fixture
def agent(tenant):
    return agent_of(tenant, username="ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def colleague(tenant):
    return agent_of(tenant, username="grace", first_name="Grace", last_name="Hopper")


@pytest.fixture
def manager(tenant):
    return agent_of(tenant, role="manager", username="boss", first_name="Mary", last_name="Boss")


def conversation_in(tenant, status=S.BOT, holder=None) -> Conversation:
    return ConversationFactory(visitor=VisitorFactory(tenant=tenant), status=status,
                               assigned_agent=holder if status == S.HUMAN else None)


def last_transition(conversation) -> ConversationTransition:
    return ConversationTransition.objects.filter(conversation=conversation).order_by("-id").first()


def system_texts(conversation) -> list[str]:
    return list(Message.objects.filter(conversation=conversation, sender="system").order_by("seq")
                .values_list("text", flat=True))


# --- the table of moves ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", ALL)
@pytest.mark.parametrize("to_status", ALL)
def test_transition_table_allows_exactly_the_drawn_moves(tenant, agent, from_status, to_status):
    conversation = conversation_in(tenant, from_status, holder=agent)
    with transaction.atomic():
        locked = journal.conversation_lock(conversation.id)
        if (from_status, to_status) in ALLOWED:
            ownership.conversation_transition(locked, to_status, actor=agent, assignee=agent, reason="test move")
        else:
            with pytest.raises(InvalidState):
                ownership.conversation_transition(locked, to_status, actor=agent, assignee=agent, reason="test move")
    conversation.refresh_from_db()
    if (from_status, to_status) in ALLOWED:
        assert conversation.status == to_status
        assert conversation.assigned_agent == (agent if to_status == S.HUMAN else None)
        moved = last_transition(conversation)
        assert (moved.from_status, moved.to_status, moved.actor, moved.reason) == (
            from_status, to_status, agent, "test move")
        assert (conversation.resolved_at is not None) == (to_status == S.RESOLVED)
    else:
        assert conversation.status == from_status
        assert not ConversationTransition.objects.filter(conversation=conversation).exists()


# --- the named moves, with actor and reason ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("start", [S.BOT, S.WAITING])
def test_take_over_gives_the_agent_the_conversation_and_records_it(tenant, agent, start):
    conversation = conversation_in(tenant, start)
    ownership.conversation_take_over(conversation.id, agent=agent)
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (S.HUMAN, agent)
    moved = last_transition(conversation)
    assert (moved.from_status, moved.to_status, moved.from_agent, moved.to_agent, moved.actor, moved.reason) == (
        start, S.HUMAN, None, agent, agent, "taken over")
    assert system_texts(conversation) == ["Ada Lovelace joined the chat."]


@pytest.mark.django_db
def test_take_over_of_own_conversation_changes_nothing(tenant, agent):
    conversation = conversation_in(tenant, S.HUMAN, holder=agent)
    ownership.conversation_take_over(conversation.id, agent=agent)
    assert not ConversationTransition.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db
def test_take_over_of_a_resolved_conversation_is_refused(tenant, agent):
    conversation = conversation_in(tenant, S.RESOLVED)
    with pytest.raises(InvalidState):
        ownership.conversation_take_over(conversation.id, agent=agent)
    assert Conversation.objects.get(pk=conversation.pk).status == S.RESOLVED


@pytest.mark.django_db
@pytest.mark.parametrize("by_manager", [False, True])
def test_take_over_of_a_conversation_another_holds_names_her(tenant, agent, colleague, manager, by_manager):
    conversation = conversation_in(tenant, S.HUMAN, holder=colleague)
    with pytest.raises(AssignedToOther) as refused:
        ownership.conversation_take_over(conversation.id, agent=manager if by_manager else agent)
    assert refused.value.code == "assigned_to_other"
    assert "Grace Hopper" in refused.value.detail
    assert Conversation.objects.get(pk=conversation.pk).assigned_agent == colleague


@pytest.mark.django_db
@pytest.mark.parametrize("start", [S.WAITING, S.HUMAN])
def test_hand_back_returns_the_conversation_to_the_bot(tenant, agent, start):
    conversation = conversation_in(tenant, start, holder=agent)
    ownership.conversation_hand_back(conversation.id, agent=agent)
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (S.BOT, None)
    moved = last_transition(conversation)
    assert (moved.from_status, moved.to_status, moved.actor, moved.reason) == (
        start, S.BOT, agent, "handed back to the bot")
    assert system_texts(conversation) == ["You're chatting with our assistant again."]


@pytest.mark.django_db
@pytest.mark.parametrize("start", [S.BOT, S.RESOLVED])
def test_hand_back_of_a_conversation_no_person_has_is_refused(tenant, agent, start):
    conversation = conversation_in(tenant, start)
    with pytest.raises(InvalidState):
        ownership.conversation_hand_back(conversation.id, agent=agent)
    assert Conversation.objects.get(pk=conversation.pk).status == start
    assert not ConversationTransition.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("start", [S.BOT, S.WAITING, S.HUMAN])
def test_resolve_closes_the_conversation_and_records_who(tenant, agent, start):
    conversation = conversation_in(tenant, start, holder=agent)
    ownership.conversation_resolve(conversation.id, agent=agent)
    conversation.refresh_from_db()
    assert conversation.status == S.RESOLVED and conversation.resolved_at and conversation.waiting_since is None
    moved = last_transition(conversation)
    assert (moved.from_status, moved.to_status, moved.actor, moved.reason) == (
        start, S.RESOLVED, agent, "resolved by an agent")


@pytest.mark.django_db
def test_resolve_twice_is_refused(tenant, agent):
    conversation = conversation_in(tenant, S.RESOLVED)
    with pytest.raises(InvalidState):
        ownership.conversation_resolve(conversation.id, agent=agent)


@pytest.mark.django_db
@pytest.mark.parametrize("start", [S.BOT, S.WAITING, S.HUMAN])
def test_reassign_gives_the_conversation_to_a_colleague(tenant, agent, colleague, start):
    conversation = conversation_in(tenant, start, holder=agent)
    ownership.conversation_reassign(conversation.id, agent=agent, to_user_id=colleague.pk)
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (S.HUMAN, colleague)
    moved = last_transition(conversation)
    assert (moved.from_status, moved.to_status, moved.to_agent, moved.actor, moved.reason) == (
        start, S.HUMAN, colleague, agent, "reassigned to Grace Hopper")


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["stranger", "missing", "text"])
def test_reassign_to_someone_outside_the_team_is_refused(tenant, agent, target):
    conversation = conversation_in(tenant, S.WAITING)
    stranger = agent_of(TenantFactory())
    to = {"stranger": stranger.pk, "missing": 10**9, "text": str(stranger.pk)}[target]
    with pytest.raises(NotFound) as refused:
        ownership.conversation_reassign(conversation.id, agent=agent, to_user_id=to)
    assert refused.value.code == "agent_not_found"
    assert Conversation.objects.get(pk=conversation.pk).status == S.WAITING


@pytest.mark.django_db
def test_reassign_of_a_resolved_conversation_is_refused(tenant, agent, colleague):
    conversation = conversation_in(tenant, S.RESOLVED)
    with pytest.raises(InvalidState):
        ownership.conversation_reassign(conversation.id, agent=agent, to_user_id=colleague.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("move", ["hand_back", "resolve", "reassign"])
def test_an_agent_may_not_act_on_a_colleagues_conversation(tenant, agent, colleague, manager, move):
    conversation = conversation_in(tenant, S.HUMAN, holder=colleague)
    kwargs = {"to_user_id": manager.pk} if move == "reassign" else {}
    with pytest.raises(AssignedToOther) as refused:
        getattr(ownership, f"conversation_{move}")(conversation.id, agent=agent, **kwargs)
    assert "Grace Hopper" in refused.value.detail
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (S.HUMAN, colleague)
    assert not ConversationTransition.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("move, status", [("hand_back", S.BOT), ("resolve", S.RESOLVED), ("reassign", S.HUMAN)])
def test_a_manager_may_act_on_an_agents_conversation(tenant, agent, colleague, manager, move, status):
    conversation = conversation_in(tenant, S.HUMAN, holder=colleague)
    kwargs = {"to_user_id": agent.pk} if move == "reassign" else {}
    getattr(ownership, f"conversation_{move}")(conversation.id, agent=manager, **kwargs)
    conversation.refresh_from_db()
    assert conversation.status == status
    moved = last_transition(conversation)
    assert (moved.from_agent, moved.actor) == (colleague, manager)


@pytest.mark.django_db
@pytest.mark.parametrize("move", ["take_over", "hand_back", "resolve", "reassign"])
def test_an_agent_of_another_store_gets_not_found(tenant, agent, move):
    conversation = conversation_in(tenant, S.WAITING)
    outsider = agent_of(TenantFactory(), role="manager")
    kwargs = {"to_user_id": agent.pk} if move == "reassign" else {}
    with pytest.raises(NotFound) as refused:
        getattr(ownership, f"conversation_{move}")(conversation.id, agent=outsider, **kwargs)
    assert (refused.value.code, refused.value.detail) == ("not_found", "No such conversation.")
    assert Conversation.objects.get(pk=conversation.pk).status == S.WAITING


@pytest.mark.django_db
def test_hand_off_moves_bot_to_waiting_with_the_reason_and_no_actor(tenant):
    conversation = conversation_in(tenant, S.BOT)
    notice = ownership.conversation_hand_off(conversation.id, "asked for a person", code="asked_for_person")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.handoff_code, conversation.handoff_reason) == (
        S.WAITING, "asked_for_person", "asked for a person")
    moved = last_transition(conversation)
    assert (moved.from_status, moved.to_status, moved.actor, moved.reason) == (
        S.BOT, S.WAITING, None, "asked for a person")
    assert notice.sender == "system"
    assert (notice.handoff_code, notice.handoff_reason) == ("asked_for_person", "asked for a person")
    # humans have it already
    assert ownership.conversation_hand_off(conversation.id, "again", code="asked_for_person") is None
    assert ConversationTransition.objects.filter(conversation=conversation).count() == 1


@pytest.mark.django_db
def test_visitor_writing_in_a_resolved_conversation_reopens_it_for_the_bot(tenant):
    conversation = conversation_in(tenant, S.RESOLVED)
    Conversation.objects.filter(pk=conversation.pk).update(csat=4)
    services.message_receive(conversation.id, "one more thing", "c1")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.csat, conversation.resolved_at) == (S.BOT, None, None)
    moved = last_transition(conversation)
    assert (moved.from_status, moved.to_status, moved.actor, moved.reason) == (
        S.RESOLVED, S.BOT, None, "visitor wrote again")


@pytest.mark.django_db
def test_idle_conversations_are_resolved_with_reason_idle(tenant):
    conversation = conversation_in(tenant, S.WAITING)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(hours=48))
    assert services.conversations_resolve_idle(hours=24) == 1
    moved = last_transition(conversation)
    assert (moved.to_status, moved.actor, moved.reason) == (S.RESOLVED, None, "idle")


# --- one open conversation per visitor -----------------------------------------------------


@pytest.mark.django_db
def test_a_second_open_conversation_for_a_visitor_is_refused_by_the_database(tenant):
    visitor = VisitorFactory(tenant=tenant)
    Conversation.objects.create(tenant=tenant, visitor=visitor, status=S.RESOLVED)
    Conversation.objects.create(tenant=tenant, visitor=visitor, status=S.WAITING)
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(tenant=tenant, visitor=visitor, status=S.BOT)
    assert Conversation.objects.filter(visitor=visitor).exclude(status=S.RESOLVED).count() == 1


# --- races, with real threads on real connections ------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("start", [S.BOT, S.WAITING])
def test_two_agents_taking_over_at_once_exactly_one_wins(start):
    tenant = TenantFactory()
    ada = agent_of(tenant, username="ada", first_name="Ada", last_name="Lovelace")
    grace = agent_of(tenant, username="grace", first_name="Grace", last_name="Hopper")
    for _ in range(5):
        conversation = conversation_in(tenant, start)
        results = race(lambda: ownership.conversation_take_over(conversation.id, agent=ada),
                       lambda: ownership.conversation_take_over(conversation.id, agent=grace))
        won = [r for r in results if isinstance(r, Conversation)]
        lost = [r for r in results if isinstance(r, AssignedToOther)]
        assert len(won) == 1 and len(lost) == 1, results
        winner = won[0].assigned_agent
        conversation.refresh_from_db()
        assert conversation.status == S.HUMAN and conversation.assigned_agent == winner
        assert lost[0].detail == f"{display_name(winner)} is handling this conversation."
        assert ConversationTransition.objects.filter(conversation=conversation).count() == 1
        assert system_texts(conversation) == [f"{display_name(winner)} joined the chat."]


@pytest.mark.django_db(transaction=True)
def test_two_tabs_opening_a_session_at_once_share_one_conversation():
    tenant = TenantFactory()
    for _ in range(5):
        visitor = Visitor.objects.create(tenant=tenant)
        sessions = race(lambda: services.visitor_session_open(tenant, visitor.token),
                        lambda: services.visitor_session_open(tenant, visitor.token))
        assert all(isinstance(s, services.Session) for s in sessions), sessions
        assert sessions[0].conversation.id == sessions[1].conversation.id
        assert Conversation.objects.filter(visitor=visitor).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_write_that_waited_for_a_take_over_announces_the_new_assignee(monkeypatch):
    """The visitor's message locked the row after the take-over committed: its summary names the agent
    (a locking read that waited used to return the new status with the assignee joined as it was: None)."""
    tenant = TenantFactory()
    ada = agent_of(tenant, username="ada", first_name="Ada", last_name="Lovelace")
    conversation = conversation_in(tenant, S.WAITING)
    heard: list[dict] = []
    monkeypatch.setitem(events._subscribers, events.MESSAGE_CREATED, [heard.append])
    taken, release = threading.Event(), threading.Event()

    def take_over_slowly():
        try:
            with transaction.atomic():
                locked = journal.conversation_lock(conversation.id)
                ownership.conversation_transition(locked, S.HUMAN, actor=ada, assignee=ada, reason="taken over")
                taken.set()
                release.wait(10)
        finally:
            connection.close()

    def visitor_writes():
        taken.wait(10)
        try:
            services.message_receive(conversation.id, "hello?", "c-1")
        finally:
            connection.close()

    threads = [threading.Thread(target=take_over_slowly), threading.Thread(target=visitor_writes)]
    for thread in threads:
        thread.start()
    assert taken.wait(10)
    with connection.cursor() as cursor:  # wait until the visitor's write queues behind the lock
        for _ in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the visitor's write never waited for the lock")
    release.set()
    for thread in threads:
        thread.join(timeout=20)
    [created] = heard
    assert created["summary"]["status"] == "human"
    assert created["summary"]["assignee"] == {"id": ada.pk, "name": "Ada Lovelace"}

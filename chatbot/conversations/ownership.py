"""Who owns a conversation, changed in one place.

    bot --hand off--> waiting --take over--> human --hand back--> bot
     |                   |                     |
     +---- take over ----+---- resolve --------+--> resolved --visitor writes--> bot

`conversation_transition` locks the row, checks the move is allowed, records who made it
and why (ConversationTransition), and emits `conversation_changed`. The named services
below are the only callers; nothing else edits `status` or `assigned_agent`.

A hand-off to a store that assigns automatically goes on to `human` in the same transaction, with
the agent chatbot.conversations.assignment picks (no actor: the system assigned it); one that waits
is assigned later by `conversation_assign_waiting` (the sweep, an agent coming online).
"""
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chatbot.conversations import access, assignment, hours, journal, presence
from chatbot.errors import AssignedToOther, InvalidState, NotFound
from chatbot.models import AgentMembership, Conversation, ConversationTransition, HandoffReason, Message
from chatbot.conversations.payloads import display_name
from chatbot.mail import outbound as mail

S = Conversation.Status
ALLOWED = {
    S.BOT: {S.WAITING, S.HUMAN, S.RESOLVED},
    S.WAITING: {S.HUMAN, S.BOT, S.RESOLVED},
    S.HUMAN: {S.HUMAN, S.BOT, S.RESOLVED},
    S.RESOLVED: {S.BOT},
}


def conversation_transition(conversation: Conversation, to_status: str, *, actor: AbstractBaseUser | None = None,
                            assignee: AbstractBaseUser | None = None, reason: str = "",
                            handoff_code: str = "") -> None:
    """Move a locked conversation to `to_status` (with `assignee` for human), record it, announce it.

    A move to waiting is a hand-off: the conversation keeps its code (a HandoffReason, `other` when none
    is given) and `reason` as the detail."""
    if to_status not in ALLOWED[conversation.status]:
        raise InvalidState(f"A conversation that is {conversation.status} cannot become {to_status}.")
    previous = {"status": conversation.status, "assignee": conversation.assigned_agent_id}
    ConversationTransition.objects.create(
        conversation=conversation, from_status=conversation.status, to_status=to_status,
        from_agent=conversation.assigned_agent, to_agent=assignee if to_status == S.HUMAN else None,
        actor=actor, reason=reason[:200],
    )
    conversation.status = to_status
    conversation.assigned_agent = assignee if to_status == S.HUMAN else None
    if to_status == S.RESOLVED:
        conversation.resolved_at = timezone.now()
        conversation.waiting_since = None
    elif previous["status"] == S.RESOLVED:
        conversation.resolved_at = None
        conversation.csat = None
    if to_status == S.WAITING:
        conversation.handoff_code = handoff_code or HandoffReason.OTHER
        conversation.handoff_reason = reason[:200]
    conversation.action_state = {}  # a store action the bot was in the middle of ends with its turn
    conversation.save()
    journal.conversation_changed(conversation, reason, previous)


def _holder_check(conversation: Conversation, agent: AbstractBaseUser) -> None:
    """Only the agent holding a conversation, or a manager of its store, may act on it while held."""
    holder = conversation.assigned_agent
    if conversation.status == S.HUMAN and holder is not None and holder.pk != agent.pk \
            and not access.is_manager(agent, conversation.tenant_id):
        raise AssignedToOther(f"{display_name(holder)} is handling this conversation.")


def conversation_hand_off(conversation_id: int, reason: str, reply_to_id: int | None = None, *,
                          code: str) -> Message | None:
    """The bot gives the conversation to humans: waiting, a notice to the visitor, agents alerted.

    `code` (a HandoffReason) is what review and insights count; `reason` is its detail in words.

    When no agent of the store is online the notice says so (the widget then offers to leave an
    e-mail address); outside the store's business hours it also says when the team is back, and the
    conversation waits for the morning. Otherwise a store that assigns automatically gives it to an
    agent here, in the hand-off's own transaction. The first-response target (first_response_due)
    starts now, or at the next opening. Returns the notice, or None when humans had it already.
    """
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        if conversation.status != S.BOT:
            return None
        tenant, now = conversation.tenant, timezone.now()
        conversation.first_response_due = hours.first_response_due(tenant, now)
        conversation.first_response_at = None
        conversation_transition(conversation, S.WAITING, reason=reason, handoff_code=code)
        back = hours.back_at(hours.schedule_of(tenant), now)
        if back is not None:
            text = hours.closed_notice(tenant, conversation.language, back, now)
        else:
            notice = "handoff_text" if presence.agents_online(tenant.id) else "no_agent_text"
            text = tenant.text(notice, conversation.language)
        message = journal.message_append(conversation, Message.Sender.SYSTEM, text, reply_to_id=reply_to_id,
                                         handoff_code=conversation.handoff_code, handoff_reason=reason[:200])
        if back is None:
            conversation_assign(conversation, now)
        return message


def conversation_assign(conversation: Conversation, at: datetime | None = None) -> bool:
    """Give a locked, waiting conversation to the agent its store's rule picks (chatbot.conversations.assignment),
    as a system assignment: no actor, and the visitor told who joined. False when nobody is picked."""
    agent = assignment.assignee_pick(conversation, at)
    if agent is None:
        return False
    conversation_transition(conversation, S.HUMAN, assignee=agent,
                            reason=f"assigned to {display_name(agent)} ({conversation.tenant.assignment})")
    journal.message_append(conversation, Message.Sender.SYSTEM, f"{display_name(agent)} joined the chat.")
    return True


def conversation_assign_waiting(conversation_id: int) -> bool | None:
    """Assign a conversation that waits for a person, now that an agent may have room (the store opened, she came
    online, a conversation of hers closed). False when nobody has room; None when it no longer waits."""
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        if conversation.status != S.WAITING:
            return None
        return conversation_assign(conversation)


def conversation_take_over(conversation_id: object, *, agent: AbstractBaseUser) -> Conversation:
    """The agent takes the conversation: the bot stops. Exactly one of two racing agents wins."""
    with transaction.atomic():
        conversation = access.access_conversation(agent, conversation_id, lock=True)
        if conversation.status == S.HUMAN and conversation.assigned_agent_id == agent.pk:
            return conversation
        if conversation.status == S.HUMAN:
            raise AssignedToOther(f"{display_name(conversation.assigned_agent)} is handling this conversation.")
        if conversation.status == S.RESOLVED:
            raise InvalidState("This conversation is resolved.")
        conversation_transition(conversation, S.HUMAN, actor=agent, assignee=agent, reason="taken over")
        journal.message_append(conversation, Message.Sender.SYSTEM, f"{display_name(agent)} joined the chat.")
        return conversation


def conversation_hand_back(conversation_id: object, *, agent: AbstractBaseUser) -> Conversation:
    """The bot answers again from the visitor's next message."""
    with transaction.atomic():
        conversation = access.access_conversation(agent, conversation_id, lock=True)
        if conversation.status not in (S.WAITING, S.HUMAN):
            raise InvalidState(f"Only a conversation with people can be handed back (this one is {conversation.status}).")
        _holder_check(conversation, agent)
        conversation_transition(conversation, S.BOT, actor=agent, reason="handed back to the bot")
        journal.message_append(conversation, Message.Sender.SYSTEM, "You're chatting with our assistant again.")
        return conversation


def conversation_resolve(conversation_id: object, *, agent: AbstractBaseUser) -> Conversation:
    """Close the conversation; the visitor is asked to rate it."""
    with transaction.atomic():
        conversation = access.access_conversation(agent, conversation_id, lock=True)
        if conversation.status == S.RESOLVED:
            raise InvalidState("This conversation is resolved already.")
        _holder_check(conversation, agent)
        conversation_transition(conversation, S.RESOLVED, actor=agent, reason="resolved by an agent")
        journal.message_append(conversation, Message.Sender.SYSTEM, "This conversation was marked as resolved.",
                               **mail.transcript_fields(conversation))  # the transcript she asked for, mailed
        return conversation


def conversation_reassign(conversation_id: object, *, agent: AbstractBaseUser, to_user_id: object) -> Conversation:
    """Give the conversation to another member of its store's team."""
    with transaction.atomic():
        conversation = access.access_conversation(agent, conversation_id, lock=True)
        if conversation.status == S.RESOLVED:
            raise InvalidState("This conversation is resolved.")
        _holder_check(conversation, agent)
        membership = (
            AgentMembership.objects.select_related("user")
            .filter(tenant_id=conversation.tenant_id, user_id=to_user_id, user__is_active=True).first()
            if isinstance(to_user_id, int) and not isinstance(to_user_id, bool) else None
        )
        if membership is None:
            raise NotFound("No such agent in this store's team.", "agent_not_found")
        if conversation.status == S.HUMAN and conversation.assigned_agent_id == membership.user_id:
            return conversation
        conversation_transition(conversation, S.HUMAN, actor=agent, assignee=membership.user,
                                reason=f"reassigned to {display_name(membership.user)}")
        journal.message_append(conversation, Message.Sender.SYSTEM, f"{display_name(membership.user)} joined the chat.")
        return conversation


def conversation_reopen(conversation: Conversation) -> None:
    """A visitor wrote in a resolved conversation (locked by the caller): the bot has it again."""
    conversation_transition(conversation, S.BOT, reason="visitor wrote again")


def conversation_resolve_idle(conversation_id: int, cutoff) -> bool:
    """Resolve a conversation nobody wrote in since `cutoff`; False when it moved meanwhile."""
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        if conversation.status == S.RESOLVED or conversation.updated_at >= cutoff:
            return False
        conversation_transition(conversation, S.RESOLVED, reason="idle")
        if fields := mail.transcript_fields(conversation):  # she asked for the transcript: it goes out now too
            journal.message_append(conversation, Message.Sender.SYSTEM, "This conversation was closed after a quiet "
                                   "while.", **fields)
        return True

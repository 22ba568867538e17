"""Who may see what: the one way agent-facing code reaches a tenant's conversations and messages.

Like Zulip's access_message, a conversation of another tenant raises the same NotFound as
one that does not exist, so nobody learns which ids are taken. Superusers (the platform's
operators) see every tenant; everybody else sees the tenants they hold a membership in.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.core.validators import slug_re
from django.db.models import QuerySet

from chatbot.conversations import journal
from chatbot.errors import NotFound, PermissionDenied
from chatbot.models import AgentMembership, Conversation, Message, Tenant


def sees_all_tenants(user: AbstractBaseUser) -> bool:
    return bool(user and user.is_active and user.is_superuser)


def tenant_ids_of(user: AbstractBaseUser) -> list[int]:
    """The tenants the user works for (every active tenant for a superuser)."""
    if not user or not user.is_authenticated or not user.is_active:
        return []
    if sees_all_tenants(user):
        return list(Tenant.objects.filter(is_active=True).values_list("id", flat=True))
    return list(AgentMembership.objects.filter(user=user, tenant__is_active=True).values_list("tenant_id", flat=True))


def is_agent(user: AbstractBaseUser) -> bool:
    """Whether the user may use the console at all."""
    return bool(tenant_ids_of(user))


def tenants_of(user: AbstractBaseUser) -> QuerySet[Tenant]:
    return Tenant.objects.filter(id__in=tenant_ids_of(user)).order_by("name")


def role_in(user: AbstractBaseUser, tenant_id: int) -> str | None:
    """The user's role in the tenant: 'manager' for superusers, None when not a member."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if sees_all_tenants(user):
        return AgentMembership.Role.MANAGER
    return AgentMembership.objects.filter(user=user, tenant_id=tenant_id, tenant__is_active=True).values_list(
        "role", flat=True).first()


def is_manager(user: AbstractBaseUser, tenant_id: int) -> bool:
    return role_in(user, tenant_id) == AgentMembership.Role.MANAGER


def conversations_for(user: AbstractBaseUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(tenant_id__in=tenant_ids_of(user))


SLUG_MAX = Tenant._meta.get_field("slug").max_length


def access_tenant(user: AbstractBaseUser, tenant: int | str, *, manager: bool = False) -> Tenant:
    """A tenant by id or slug that the user belongs to; with `manager`, one she manages."""
    if isinstance(tenant, str) and not (slug_re.match(tenant) and len(tenant) <= SLUG_MAX):  # no store has it
        raise NotFound("No such store.", "not_found")
    lookup = {"pk": tenant} if isinstance(tenant, int) else {"slug": tenant}
    found = Tenant.objects.filter(is_active=True, **lookup).first()
    role = role_in(user, found.id) if found else None
    if role is None:
        raise NotFound("No such store.", "not_found")
    if manager and role != AgentMembership.Role.MANAGER:
        raise PermissionDenied("Only the store's managers may do that.")
    return found


def access_conversation(user: AbstractBaseUser, conversation_id: object, *, lock: bool = False) -> Conversation:
    """The conversation if the user works for its tenant, else NotFound, exactly as for a missing one."""
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise NotFound("No such conversation.")
    qs = Conversation.objects.filter(pk=conversation_id, tenant_id__in=tenant_ids_of(user))
    if lock:
        journal.row_lock(qs)
    conversation = qs.select_related(*journal.INBOX_RELATED).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def access_message(user: AbstractBaseUser, message_id: object) -> Message:
    """A message of a conversation the user may see, else NotFound."""
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise NotFound("No such message.")
    message = (
        Message.objects.select_related("conversation__tenant", "reply_to")
        .filter(pk=message_id, conversation__tenant_id__in=tenant_ids_of(user))
        .first()
    )
    if message is None:
        raise NotFound("No such message.")
    return message

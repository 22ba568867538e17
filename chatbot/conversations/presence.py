"""Which agents have the console open: one row per agent socket, refreshed while it lives.

A row not refreshed for AGENT_PRESENCE_TTL seconds counts as gone, so a web process that
died without saying goodbye does not leave agents 'online' for ever.
"""
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from chatbot.models import AgentMembership, AgentPresence


def presence_join(user: AbstractBaseUser, channel_name: str) -> None:
    AgentPresence.objects.update_or_create(channel_name=channel_name, defaults={"user": user, "seen_at": timezone.now()})


def presence_touch(channel_name: str) -> None:
    AgentPresence.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


def presence_leave(channel_name: str) -> None:
    AgentPresence.objects.filter(channel_name=channel_name).delete()


def _live():
    return AgentPresence.objects.filter(seen_at__gte=timezone.now() - timedelta(seconds=settings.AGENT_PRESENCE_TTL))


def agents_online(tenant_id: int) -> bool:
    """Whether any member of the tenant's team has the console open."""
    members = AgentMembership.objects.filter(tenant_id=tenant_id).values("user_id")
    return _live().filter(user_id__in=members).exists()


def online_user_ids(tenant_id: int) -> set[int]:
    """The active members of the tenant's team who have the console open (automatic assignment's candidates)."""
    members = AgentMembership.objects.filter(tenant_id=tenant_id, user__is_active=True).values("user_id")
    return set(_live().filter(user_id__in=members).values_list("user_id", flat=True).distinct())


def presence_sweep() -> int:
    """Forget sockets that stopped refreshing long ago."""
    cutoff = timezone.now() - timedelta(seconds=settings.AGENT_PRESENCE_TTL * 10)
    return AgentPresence.objects.filter(seen_at__lt=cutoff).delete()[0]

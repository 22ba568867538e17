"""Automatic assignment: who gets a conversation handed to people, by its store's rule (Tenant.assignment), and
the team settings managers choose it with.

- manual: nobody; agents claim hand-offs themselves (as before the rules).
- round_robin: the eligible agent whose turn it is: the one assigned longest ago (AgentMembership.last_assigned_at;
  never assigned counts as longest).
- least_loaded: the eligible agent with the fewest open conversations (hers, status human, in this store); a tie
  goes to the one assigned longest ago.

Eligible: a member of the store's team who has the console open (chatbot.conversations.presence), with capacity
left (her open conversations in this store < AgentMembership.capacity; capacity 0: never assigned automatically).
When some eligible agent lists the conversation's language (AgentMembership.languages), the rule picks among those
only. While the store is closed (chatbot.conversations.hours) nobody is picked: hand-offs wait for the morning.

Capacity holds when hand-offs race: `assignee_pick` locks the candidates' membership rows (SELECT ... FOR UPDATE,
in id order, so two pickers never wait on each other in a circle) before it counts their open conversations, so the
second of two simultaneous hand-offs counts the first one's assignment once it gets the locks. Callers hold the
conversation's row lock first (ownership's order, always conversation then memberships). On SQLite, which has no
row locks, a transaction takes the database's write lock when it begins (settings: transaction_mode IMMEDIATE), so
pickers run one after the other there.

This module decides; chatbot.conversations.ownership makes the move (status human, the agent as assignee, no
actor: a system assignment) and announces it.
"""
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from chatbot.conversations import access, hours, presence
from chatbot.errors import InvalidField, NotFound
from chatbot.models import AgentMembership, Conversation, Tenant, language_code

Rule = Tenant.Assignment
AUTOMATIC = (Rule.ROUND_ROBIN, Rule.LEAST_LOADED)
MAX_CAPACITY = 100
MAX_TARGET_MINUTES = 7 * 24 * 60
SWEEP_LIMIT = 500  # waiting conversations one sweep looks at
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    """An online member of the team, with what the rules weigh."""

    membership_id: int
    user_id: int
    capacity: int
    languages: tuple[str, ...]
    last_assigned_at: datetime | None
    load: int  # her open conversations in this store


def open_loads(tenant_id: int, user_ids: list[int]) -> dict[int, int]:
    """user id -> how many of the store's conversations she holds (status human)."""
    rows = (Conversation.objects.filter(tenant_id=tenant_id, status=Conversation.Status.HUMAN,
                                        assigned_agent_id__in=user_ids)
            .order_by().values("assigned_agent_id").annotate(n=Count("id")))
    return {row["assigned_agent_id"]: row["n"] for row in rows}


def candidates_locked(tenant_id: int) -> list[Candidate]:
    """The store's online agents who may be given conversations, their membership rows locked for the rest of the
    transaction (in id order), their loads counted after the lock."""
    online = presence.online_user_ids(tenant_id)
    if not online:
        return []
    rows = list(AgentMembership.objects.filter(tenant_id=tenant_id, user_id__in=online, capacity__gt=0)
                .order_by("pk").select_for_update()
                .values_list("pk", "user_id", "capacity", "languages", "last_assigned_at"))
    loads = open_loads(tenant_id, [row[1] for row in rows])
    return [Candidate(pk, user_id, capacity, tuple(language_code(x) for x in languages or [] if language_code(x)),
                      last, loads.get(user_id, 0))
            for pk, user_id, capacity, languages, last in rows]


def choose(candidates: list[Candidate], rule: str, language: str = "") -> Candidate | None:
    """The rule's pick among those with capacity left, speakers of `language` first; None when nobody has room."""
    eligible = [c for c in candidates if c.load < c.capacity]
    language = language_code(language)
    pool = [c for c in eligible if language and language in c.languages] or eligible
    if not pool:
        return None
    if rule == Rule.LEAST_LOADED:
        return min(pool, key=lambda c: (c.load, c.last_assigned_at or _NEVER, c.membership_id))
    return min(pool, key=lambda c: (c.last_assigned_at or _NEVER, c.membership_id))


def assignee_pick(conversation: Conversation, at: datetime | None = None) -> AbstractBaseUser | None:
    """The agent a locked, waiting conversation goes to now by its store's rule, her turn taken (last_assigned_at);
    None when the rule is manual, the store is closed or no online agent has room. Call inside the transaction
    that moves the conversation, so the locks last until the assignment is committed."""
    tenant = conversation.tenant
    if tenant.assignment not in AUTOMATIC:
        return None
    at = at or timezone.now()
    if not hours.is_open(hours.schedule_of(tenant), at):
        return None
    chosen = choose(candidates_locked(tenant.id), tenant.assignment, conversation.language)
    if chosen is None:
        return None
    AgentMembership.objects.filter(pk=chosen.membership_id).update(last_assigned_at=at)
    return get_user_model().objects.get(pk=chosen.user_id)


def waiting_to_assign(tenant_ids: list[int] | None = None, at: datetime | None = None) -> list[tuple[int, int]]:
    """(conversation id, tenant id) of conversations waiting for a person in open stores that assign
    automatically, the longest-waiting first (the sweep's work list)."""
    at = at or timezone.now()
    tenants = Tenant.objects.filter(is_active=True, assignment__in=AUTOMATIC).only(
        "id", "timezone", "business_hours", "holidays")
    if tenant_ids is not None:
        tenants = tenants.filter(id__in=tenant_ids)
    open_ids = [t.id for t in tenants if hours.is_open(hours.schedule_of(t), at)]
    if not open_ids:
        return []
    return list(Conversation.objects.filter(tenant_id__in=open_ids, status=Conversation.Status.WAITING)
                .order_by("waiting_since", "id").values_list("id", "tenant_id")[:SWEEP_LIMIT])


# --- the team settings (the console's Team page) ------------------------------------------------------------


class TeamSettingsInvalid(InvalidField):
    """Refused team settings; `field` names the form's input: assignment, timezone, business_hours or a day (mon...),
    holidays, first_response_minutes, capacity_<user id>, languages_<user id>, notify_<user id> (codes:
    invalid_assignment, invalid_target, invalid_capacity, invalid_languages, invalid_notify, unknown_member, and
    hours.HoursInvalid's)."""

    code = "invalid_team_settings"


class NotifyInvalid(InvalidField):
    """A hand-off e-mail preference that is none of AgentMembership.Notify's (each, digest, none)."""

    code = "invalid_notify"


@dataclass(frozen=True)
class MemberSettings:
    capacity: int
    languages: list[str]
    notify: str | None = None  # AgentMembership.Notify; None: she keeps hers


def notify_clean(notify: object, field: str, refusal: type[InvalidField] = NotifyInvalid) -> str:
    """A hand-off e-mail preference (AgentMembership.notify): each, digest or none; else `refusal` on `field`."""
    if not isinstance(notify, str) or notify not in AgentMembership.Notify.values:
        raise refusal("Choose how hand-offs are e-mailed: each, digest or none.", "invalid_notify", field)
    return notify


def _member_clean(user_id: int, settings: MemberSettings) -> MemberSettings:
    capacity = settings.capacity
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= MAX_CAPACITY:
        raise TeamSettingsInvalid(f"Capacity is a number of conversations from 0 to {MAX_CAPACITY}.",
                                  "invalid_capacity", f"capacity_{user_id}")
    languages = settings.languages
    if not isinstance(languages, list) or len(languages) > 20:
        raise TeamSettingsInvalid("List up to 20 languages as two-letter codes, e.g. en, es.", "invalid_languages",
                                  f"languages_{user_id}")
    for code in languages:
        if not isinstance(code, str) or language_code(code) != code:
            raise TeamSettingsInvalid(f"{str(code)[:10]!r} is not a two-letter language code (e.g. en, es, de).",
                                      "invalid_languages", f"languages_{user_id}")
    notify = None if settings.notify is None else notify_clean(settings.notify, f"notify_{user_id}",
                                                               TeamSettingsInvalid)
    return MemberSettings(capacity, list(dict.fromkeys(languages)), notify)


def team_settings_save(user: AbstractBaseUser, tenant: Tenant | int | str, *, assignment: object, timezone_name: object,
                       business_hours: object, holidays: object, first_response_minutes: object,
                       members: dict[int, MemberSettings] | None = None) -> Tenant:
    """A store's assignment rule, business hours (time zone, weekly schedule, holidays), first-response target
    (minutes, None: none) and its members' capacity, languages and hand-off e-mails (`members`: user id -> settings;
    a member left out keeps hers, and so does one whose `notify` is None). Managers of the store only; nothing is
    stored unless all of it is valid."""
    tenant = access.access_tenant(user, tenant.pk if isinstance(tenant, Tenant) else tenant, manager=True)
    if assignment not in Rule.values:
        raise TeamSettingsInvalid("Choose how hand-offs are assigned.", "invalid_assignment", "assignment")
    zone = hours.timezone_clean(timezone_name)
    schedule = hours.schedule_clean(business_hours)
    days = hours.holidays_clean(holidays)
    if first_response_minutes is not None and (
            not isinstance(first_response_minutes, int) or isinstance(first_response_minutes, bool)
            or not 1 <= first_response_minutes <= MAX_TARGET_MINUTES):
        raise TeamSettingsInvalid(f"The first-response target is 1 to {MAX_TARGET_MINUTES} minutes, or empty for "
                                  "none.", "invalid_target", "first_response_minutes")
    members = {user_id: _member_clean(user_id, settings) for user_id, settings in (members or {}).items()}
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        seats = {m.user_id: m for m in AgentMembership.objects.select_for_update().filter(
            tenant=tenant, user_id__in=list(members))}
        for user_id in members:
            if user_id not in seats:
                raise TeamSettingsInvalid("No such member of this store's team.", "unknown_member",
                                          f"capacity_{user_id}")
        tenant.assignment, tenant.timezone, tenant.business_hours = assignment, zone, schedule
        tenant.holidays, tenant.first_response_minutes = days, first_response_minutes
        tenant.save(update_fields=["assignment", "timezone", "business_hours", "holidays", "first_response_minutes"])
        for user_id, settings in members.items():
            seat = seats[user_id]
            notify = settings.notify or seat.notify
            if (seat.capacity, seat.languages, seat.notify) != (settings.capacity, settings.languages, notify):
                seat.capacity, seat.languages, seat.notify = settings.capacity, settings.languages, notify
                seat.save(update_fields=["capacity", "languages", "notify"])
    return tenant


def member_notify_set(user: AbstractBaseUser, membership_id: object, notify: object) -> AgentMembership:
    """An agent's own choice of how she hears of hand-offs nobody was online for (AgentMembership.notify: each,
    digest or none; chatbot.mail.notify), in one of her stores. Her own memberships only, in active stores, a
    superuser's too: another agent's, another store's and a missing one are refused alike (NotFound), before the
    value is looked at; a value that is not a choice is NotifyInvalid (field `notify`), and nothing is stored."""
    if not isinstance(membership_id, int) or isinstance(membership_id, bool) or not getattr(user, "is_active", False):
        raise NotFound("No such membership.")
    with transaction.atomic():
        seat = (AgentMembership.objects.select_for_update().select_related("tenant")
                .filter(pk=membership_id, user_id=user.pk, tenant__is_active=True).first())
        if seat is None:
            raise NotFound("No such membership.")
        notify = notify_clean(notify, "notify")
        if seat.notify != notify:
            seat.notify = notify
            seat.save(update_fields=["notify"])
    return seat

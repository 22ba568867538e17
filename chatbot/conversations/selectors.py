"""Reads: the queries the consumers, views and workers share."""
import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, Exists, F, IntegerField, Max, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from chatbot.conversations import access
from chatbot.errors import UnknownTenant
from chatbot.models import AgentMembership, CannedReply, Conversation, KnowledgeEntry, Message, Tenant, TrainingExample, Visitor

INBOX_TABS = ("mine", "unassigned", "all", "resolved")


def tenant_by_public_key(key: str) -> Tenant | None:
    if not key:
        return None
    return Tenant.objects.filter(public_key=key, is_active=True).first()


def tenant_by_slug(slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def tenant_require(tenant: Tenant | str) -> Tenant:
    """A tenant by object or slug, as commands take it; an unknown slug names the known ones."""
    if isinstance(tenant, Tenant):
        return tenant
    found = tenant_by_slug(tenant)
    if found is None:
        known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)[:10]) or "none yet"
        raise UnknownTenant(f"unknown tenant {tenant!r} (known tenants: {known})")
    return found


def visitor_by_token(tenant: Tenant, token: str) -> Visitor | None:
    """A token only ever finds a visitor of the tenant it was issued by."""
    if not token:
        return None
    return Visitor.objects.filter(tenant=tenant, token=token).first()


def conversation_open_for_visitor(visitor: Visitor) -> Conversation | None:
    """Her open conversation, else one resolved in the last WIDGET_RESOLVED_GRACE_MINUTES: a reload
    right after an agent resolved it still shows the transcript and asks for her rating."""
    mine = Conversation.objects.filter(visitor=visitor).select_related("assigned_agent")
    found = mine.exclude(status=Conversation.Status.RESOLVED).order_by("-created_at").first()
    if found is None and settings.WIDGET_RESOLVED_GRACE_MINUTES > 0:
        since = timezone.now() - timedelta(minutes=settings.WIDGET_RESOLVED_GRACE_MINUTES)
        found = mine.filter(status=Conversation.Status.RESOLVED, resolved_at__gte=since).order_by("-resolved_at").first()
    return found


def conversation_history(conversation_id: int, after_seq: int = 0, limit: int | None = None) -> list[Message]:
    """What the visitor sees: messages after `after_seq` in seq order (never notes); with `limit`, the latest ones."""
    qs = Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq, private=False).select_related(
        "author")
    if limit is None:
        return list(qs.order_by("seq"))
    return list(reversed(qs.order_by("-seq")[:limit]))


def conversation_history_page(conversation_id: int, after_seq: int, size: int) -> tuple[list[Message], bool]:
    """The first `size` messages the visitor sees after `after_seq`, in seq order, and whether more follow
    (a socket's resume sends a long history a page at a time)."""
    rows = list(Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq, private=False)
                .select_related("author").order_by("seq")[:size + 1])
    return rows[:size], len(rows) > size


def conversation_recent_turns(conversation_id: int, up_to_seq: int, turns: int) -> list[Message]:
    """The last `turns` messages up to and including `up_to_seq` (the responder's window); agents' private
    notes are not part of the conversation the visitor had, so the bot never reads (or repeats) them."""
    qs = Message.objects.filter(conversation_id=conversation_id, seq__lte=up_to_seq, private=False).order_by(
        "-seq")[:turns]
    return list(reversed(qs))


def tenant_languages(tenant_id: int) -> list[str]:
    """The languages a store lists (Tenant.languages); [] for none or for a store that is gone."""
    return next(iter(Tenant.objects.filter(pk=tenant_id).values_list("languages", flat=True)), None) or []


def knowledge_for_tenant(tenant_id: int) -> list[KnowledgeEntry]:
    return list(KnowledgeEntry.objects.filter(tenant_id=tenant_id, is_active=True).order_by("id"))


def knowledge_version(tenant_id: int) -> tuple:
    """Changes whenever the tenant's active knowledge changes; keys the retrieval cache."""
    return _change_stamp(KnowledgeEntry.objects.filter(tenant_id=tenant_id, is_active=True))


def intent_reply_pairs(tenant_id: int) -> list[tuple[int, str, str, str, str]]:
    """(id, intent, message, reply, language) of the tenant's labelled examples that carry a reply
    (language "": the store's main one)."""
    return list(TrainingExample.objects.filter(tenant_id=tenant_id).exclude(intent="").exclude(response="")
                .order_by("id").values_list("id", "intent", "text", "response", "language"))


def intent_replies_version(tenant_id: int) -> tuple:
    """Changes whenever the tenant's labelled examples change; keys the intent-reply cache."""
    return _change_stamp(TrainingExample.objects.filter(tenant_id=tenant_id))


def _change_stamp(rows) -> tuple:
    """(count, newest updated_at, newest id): changes when a row is added, edited or deleted."""
    agg = rows.aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    return (agg["n"], agg["last"], agg["top"])


# --- the agents' side ------------------------------------------------------------------


def inbox(user: AbstractBaseUser, tab: str = "all", query: str = "", tenant_id: int | None = None) -> QuerySet[Conversation]:
    """The conversations an agent may see, by need: waiting first, then unhappy visitors, then the
    longest wait, then the most recent. `tab`: mine, unassigned, all (open) or resolved."""
    S = Conversation.Status
    qs = access.conversations_for(user).select_related("tenant", "visitor", "assigned_agent")
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if tab == "mine":
        qs = qs.filter(status=S.HUMAN, assigned_agent=user)
    elif tab == "unassigned":
        qs = qs.filter(status=S.WAITING)
    elif tab == "resolved":
        qs = qs.filter(status=S.RESOLVED)
    else:
        qs = qs.exclude(status=S.RESOLVED)
    query = (query or "").replace("\x00", "").strip()[:200]  # PostgreSQL refuses NUL in a query
    language, query = inbox_language_term(query)
    if language:
        qs = qs.filter(language=language)
    if query:
        matches = Q(last_message_text__icontains=query) | Q(visitor__email__icontains=query) | Q(
            Exists(Message.objects.filter(conversation=OuterRef("pk"), private=False, text__icontains=query)))
        if query.isdecimal():  # isdigit() also takes "²", which int() refuses
            matches |= Q(pk=int(query)) | Q(visitor_id=int(query))
        qs = qs.filter(matches)
    if tab == "resolved":
        return qs.order_by("-resolved_at", "-id")
    need = Case(When(status=S.WAITING, then=Value(0)), default=Value(1), output_field=IntegerField())
    unhappy = Case(When(last_sentiment="negative", then=Value(0)), default=Value(1), output_field=IntegerField())
    return qs.order_by(need, unhappy, F("waiting_since").asc(nulls_last=True), "-updated_at", "-id")


_LANGUAGE_TERM = re.compile(r"(?:^|\s)lang:([a-z]{2,3})(?=\s|$)", re.IGNORECASE)


def inbox_language_term(query: str) -> tuple[str, str]:
    """A search's `lang:es` term (the conversation's language) and the rest of the search."""
    found = _LANGUAGE_TERM.search(query)
    if not found:
        return "", query
    return found.group(1).lower(), " ".join((query[:found.start()] + " " + query[found.end():]).split())


def inbox_counts(user: AbstractBaseUser, tenant_id: int | None = None) -> dict[str, int]:
    """How many conversations each inbox tab holds."""
    S = Conversation.Status
    qs = access.conversations_for(user)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.aggregate(
        mine=Count("id", filter=Q(status=S.HUMAN, assigned_agent=user)),
        unassigned=Count("id", filter=Q(status=S.WAITING)),
        all=Count("id", filter=~Q(status=S.RESOLVED)),
    )


def transcript(conversation_id: int, limit: int = 500) -> list[Message]:
    """The latest `limit` messages of a conversation, notes included, with what their payloads need."""
    qs = Message.objects.filter(conversation_id=conversation_id).select_related("author", "reply_to")
    return list(reversed(qs.order_by("-seq")[:limit]))


def team_of(tenant_id: int) -> list[AgentMembership]:
    return list(AgentMembership.objects.filter(tenant_id=tenant_id, user__is_active=True)
                .select_related("user").order_by("user__username"))


def memberships_of(user: AbstractBaseUser) -> list[AgentMembership]:
    """The user's own seats in active stores, by store name (a superuser's too: only the stores she is on)."""
    if not user or not user.is_authenticated or not user.is_active:
        return []
    return list(AgentMembership.objects.filter(user_id=user.pk, tenant__is_active=True)
                .select_related("tenant").order_by("tenant__name", "pk"))


def canned_replies(tenant_ids: list[int]) -> list[CannedReply]:
    return list(CannedReply.objects.filter(tenant_id__in=tenant_ids).order_by("tenant_id", "shortcut"))

"""Reads: the queries the consumers, views and workers share."""
from django.db.models import Count, Max

from .errors import UnknownTenant
from .models import Conversation, KnowledgeEntry, Message, Tenant, TrainingExample, Visitor


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
    return (
        Conversation.objects.filter(visitor=visitor)
        .exclude(status=Conversation.Status.RESOLVED)
        .order_by("-created_at")
        .first()
    )


def conversation_history(conversation_id: int, after_seq: int = 0, limit: int | None = None) -> list[Message]:
    """Messages after `after_seq` in seq order; with `limit`, the latest ones."""
    qs = Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
    if limit is None:
        return list(qs.order_by("seq"))
    return list(reversed(qs.order_by("-seq")[:limit]))


def conversation_recent_turns(conversation_id: int, up_to_seq: int, turns: int) -> list[Message]:
    """The last `turns` messages up to and including `up_to_seq` (the responder's window)."""
    qs = Message.objects.filter(conversation_id=conversation_id, seq__lte=up_to_seq).order_by("-seq")[:turns]
    return list(reversed(qs))


def knowledge_for_tenant(tenant_id: int) -> list[KnowledgeEntry]:
    return list(KnowledgeEntry.objects.filter(tenant_id=tenant_id, is_active=True).order_by("id"))


def knowledge_version(tenant_id: int) -> tuple:
    """Changes whenever the tenant's active knowledge changes; keys the retrieval cache."""
    return _change_stamp(KnowledgeEntry.objects.filter(tenant_id=tenant_id, is_active=True))


def intent_reply_pairs(tenant_id: int) -> list[tuple[int, str, str, str]]:
    """(id, intent, message, reply) of the tenant's labelled examples that carry a reply."""
    return list(TrainingExample.objects.filter(tenant_id=tenant_id).exclude(intent="").exclude(response="")
                .order_by("id").values_list("id", "intent", "text", "response"))


def intent_replies_version(tenant_id: int) -> tuple:
    """Changes whenever the tenant's labelled examples change; keys the intent-reply cache."""
    return _change_stamp(TrainingExample.objects.filter(tenant_id=tenant_id))


def _change_stamp(rows) -> tuple:
    """(count, newest updated_at, newest id): changes when a row is added, edited or deleted."""
    agg = rows.aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    return (agg["n"], agg["last"], agg["top"])

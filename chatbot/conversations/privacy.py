"""Data-subject requests: everything stored about a visitor (export), and erasing it (delete).

Erasure keeps the anonymous shape of what happened, so counts and timings stay true: the visitor
row (id, dates), her conversations (status, dates, CSAT, hand-off reason, labels) and every message
row (sender, seq, dates, intent and sentiment labels, model versions) remain. What could say who
she is or what she wrote goes: the text of every message of her conversations (hers, the bot's
and the agents', which quote her order numbers and addresses) becomes "", her e-mail address and
external id are cleared, her token is replaced (the old device no longer finds her), her own
ratings are deleted, agents' feedback on those replies keeps its thumbs and intent but loses the
reply texts, and suggested replies lose their texts.
"""
from datetime import date, datetime

from django.db import models, transaction

from chatbot.conversations import journal, selectors
from chatbot.errors import NotFound
from chatbot.conversations.identity import visitor_token_new
from chatbot.models import AssistSuggestion, Conversation, ConversationTransition, Feedback, Message, Tenant, Visitor

ERASED_TEXT = ""


def visitors_of(tenant: Tenant | str, ref: str) -> list[Visitor]:
    """The tenant's visitor(s) that `ref` names: a visitor id, a token, or the store's external id
    (which two devices may have created twice). NotFound when none."""
    tenant = selectors.tenant_require(tenant)
    ref = (ref or "").strip()
    if not ref or "\x00" in ref:
        raise NotFound("Name a visitor by id, token or external id.", "visitor_not_found")
    rows = Visitor.objects.filter(tenant=tenant).order_by("id")
    found = list(rows.filter(token=ref) | rows.filter(external_id=ref))
    if not found and ref.isdecimal() and int(ref) < 2**63:
        found = list(rows.filter(pk=int(ref)))
    if not found:
        raise NotFound(f"No visitor {ref!r} in {tenant.slug}.", "visitor_not_found")
    return found


def _row(obj: models.Model, exclude: tuple = ()) -> dict:
    """Every stored column of a row, JSON-ready (foreign keys as ids)."""
    out = {}
    for field in obj._meta.concrete_fields:
        if field.name in exclude:
            continue
        value = getattr(obj, field.attname)
        out[field.attname if field.is_relation else field.name] = (
            value.isoformat() if isinstance(value, (datetime, date)) else value
        )
    return out


def visitor_export(tenant: Tenant | str, ref: str) -> dict:
    """Everything stored about the visitor: her row, conversations with their messages (agents' notes
    included), hand-offs, feedback on those messages and suggested replies, as JSON-ready data."""
    tenant = selectors.tenant_require(tenant)
    out = []
    for visitor in visitors_of(tenant, ref):
        conversations = []
        for conversation in Conversation.objects.filter(visitor=visitor).order_by("id"):
            messages = Message.objects.filter(conversation=conversation).order_by("seq")
            conversations.append({
                **_row(conversation),
                "messages": [_row(m) for m in messages],
                "transitions": [_row(t) for t in ConversationTransition.objects.filter(
                    conversation=conversation).order_by("id")],
                "feedback": [_row(f) for f in Feedback.objects.filter(
                    message__conversation=conversation).order_by("id")],
                "suggestions": [_row(s) for s in AssistSuggestion.objects.filter(
                    conversation=conversation).order_by("id")],
            })
        out.append({**_row(visitor), "conversations": conversations})
    return {"tenant": tenant.slug, "visitors": out}


def visitor_erase(tenant: Tenant | str, ref: str) -> dict:
    """Erase what identifies the visitor or what she wrote (see the module docstring); returns counts."""
    tenant = selectors.tenant_require(tenant)
    counts = {"visitors": 0, "conversations": 0, "messages": 0, "feedback_deleted": 0, "feedback_erased": 0,
              "suggestions": 0}
    for visitor in visitors_of(tenant, ref):
        with transaction.atomic():
            conversation_ids = list(Conversation.objects.filter(visitor=visitor).values_list("id", flat=True))
            for conversation_id in conversation_ids:  # in id order, as every writer locks them
                journal.conversation_lock(conversation_id)
            messages = Message.objects.filter(conversation_id__in=conversation_ids)
            feedback = Feedback.objects.filter(message__conversation_id__in=conversation_ids)
            counts["feedback_deleted"] += feedback.filter(source=Feedback.Source.VISITOR).delete()[0]
            counts["feedback_erased"] += feedback.update(original_reply="", correction="")
            counts["suggestions"] += AssistSuggestion.objects.filter(
                conversation_id__in=conversation_ids).update(texts=[])
            counts["messages"] += messages.update(text=ERASED_TEXT)
            counts["conversations"] += Conversation.objects.filter(id__in=conversation_ids).update(
                last_message_text="")
            Visitor.objects.filter(pk=visitor.pk).update(email="", external_id="",
                                                         token=visitor_token_new(tenant.id))
            counts["visitors"] += 1
            for conversation_id in conversation_ids:  # open consoles drop the erased preview
                journal.conversation_changed(journal.conversation_fresh(conversation_id), "erased")
    return counts

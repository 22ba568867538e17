"""Writes of a store's canned replies (the answers agents insert by typing /shortcut).

Only the store's managers may write them; a reply of a store the user is not in is NotFound,
exactly like a missing one (chatbot.conversations.access).
"""
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from chatbot.conversations import access
from chatbot.errors import NotFound, ServiceError
from chatbot.models import CannedReply, Tenant

SHORTCUT_MAX_LENGTH = CannedReply._meta.get_field("shortcut").max_length


class CannedReplyInvalid(ServiceError):
    """A refused canned reply; `field` names the input at fault, for the form (codes: shortcut_required,
    shortcut_too_long, invalid_shortcut, text_required, text_too_long, duplicate_shortcut)."""

    code = "invalid_canned_reply"

    def __init__(self, detail: str, code: str, field: str):
        super().__init__(detail, code)
        self.field = field


def _clean_shortcut(shortcut: object) -> str:
    if not isinstance(shortcut, str):
        raise CannedReplyInvalid("Give a shortcut.", "shortcut_required", "shortcut")
    shortcut = shortcut.strip().lstrip("/").strip().lower()
    if not shortcut:
        raise CannedReplyInvalid("Give a shortcut.", "shortcut_required", "shortcut")
    if len(shortcut) > SHORTCUT_MAX_LENGTH:
        raise CannedReplyInvalid(f"A shortcut has at most {SHORTCUT_MAX_LENGTH} characters.", "shortcut_too_long",
                                 "shortcut")
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in shortcut):
        raise CannedReplyInvalid("A shortcut may hold only letters, digits, - and _ (e.g. refund-policy).",
                                 "invalid_shortcut", "shortcut")
    return shortcut


def _clean_text(text: object) -> str:
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise CannedReplyInvalid("Write the reply's text.", "text_required", "text")
    limit = settings.WIDGET_MAX_TEXT_LENGTH
    if len(text) > limit:
        raise CannedReplyInvalid(f"A reply has at most {limit} characters (this one has {len(text)}).",
                                 "text_too_long", "text")
    return text


def _duplicate(shortcut: str) -> CannedReplyInvalid:
    return CannedReplyInvalid(f"The shortcut /{shortcut} is taken already in this store; choose another.",
                              "duplicate_shortcut", "shortcut")


def canned_reply_of(user: AbstractBaseUser, reply_id: object, *, manager: bool = False) -> CannedReply:
    """A canned reply of a store the user belongs to (manages, with `manager`), else NotFound."""
    if not isinstance(reply_id, int) or isinstance(reply_id, bool):
        raise NotFound("No such canned reply.")
    reply = CannedReply.objects.select_related("tenant").filter(pk=reply_id,
                                                                 tenant_id__in=access.tenant_ids_of(user)).first()
    if reply is None:
        raise NotFound("No such canned reply.")
    access.access_tenant(user, reply.tenant_id, manager=manager)
    return reply


def canned_reply_save(user: AbstractBaseUser, tenant: Tenant | int | str, shortcut: object, text: object,
                      reply_id: int | None = None) -> CannedReply:
    """Create (no `reply_id`) or edit a canned reply of a store the user manages; shortcuts are unique per store."""
    tenant = access.access_tenant(user, tenant.pk if isinstance(tenant, Tenant) else tenant, manager=True)
    shortcut, text = _clean_shortcut(shortcut), _clean_text(text)
    with transaction.atomic():
        if reply_id is None:
            reply = CannedReply(tenant=tenant)
        else:
            reply = canned_reply_of(user, reply_id, manager=True)
            if reply.tenant_id != tenant.id:
                raise NotFound("No such canned reply.")
        if CannedReply.objects.filter(tenant=tenant, shortcut=shortcut).exclude(pk=reply.pk).exists():
            raise _duplicate(shortcut)
        reply.shortcut, reply.text = shortcut, text
        try:
            with transaction.atomic():
                reply.save()
        except IntegrityError:  # another manager saved the same shortcut meanwhile
            raise _duplicate(shortcut) from None
    return reply


def canned_reply_delete(user: AbstractBaseUser, reply_id: object) -> CannedReply:
    """Delete a canned reply of a store the user manages; returns it as it was."""
    with transaction.atomic():
        reply = canned_reply_of(user, reply_id, manager=True)
        reply.delete()
    return reply

"""Writes and workflows of the chat: sessions, messages, replies, hand-off, feedback, tenants.

Every function validates, writes inside a transaction and emits domain events (chatbot.events),
which reach the sockets and the answer trigger once the transaction commits. Who owns a
conversation changes in chatbot.conversations.ownership.
"""
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from chatbot.conversations import access, assignment, delivery, hours, identity, journal, ownership, selectors

from chatbot.console import assist

from chatbot import events
from chatbot.mail import outbound as mail
from chatbot.errors import AssignedToOther, InvalidState, NotFound, ServiceError
from chatbot.models import AgentMembership, Conversation, Feedback, Message, Tenant, Visitor
from chatbot.conversations.payloads import display_name

log = logging.getLogger(__name__)


@dataclass
class Session:
    visitor: Visitor | None  # None: not stored yet (created at her first message)
    conversation: Conversation | None
    new_visitor: bool
    token: str = ""


# --- tenants -----------------------------------------------------------------------


def tenant_create(name: str, origins: list[str], slug: str | None = None) -> Tenant:
    """A new store; its slug comes from the name, made unique with a number if taken."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("A tenant needs a name.", "name_required")
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ServiceError(f"Origin {origin!r} must look like https://shop.example.", "invalid_origin")
    base = slugify(slug or name)[:90] or "tenant"
    candidate, n = base, 1
    while Tenant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Tenant.objects.create(
        name=name, slug=candidate, allowed_origins=[o.rstrip("/") for o in origins]
    )


def agent_add(tenant: Tenant | str, username: str, *, password: str | None = None, role: str = "agent",
              name: str | None = None, email: str | None = None) -> tuple[AgentMembership, bool]:
    """Create or update a console user and her seat in a tenant's team; returns (membership, user created).

    Agents are not staff: the console is their workplace, the admin is for the platform's operators.
    """
    tenant = selectors.tenant_require(tenant)
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise ServiceError("A username of 1 to 150 characters is needed.", "invalid_username")
    if role not in AgentMembership.Role.values:
        raise ServiceError(f"`role` must be one of {', '.join(AgentMembership.Role.values)}.", "invalid_role")
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if password is not None:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        if name is not None:
            first, _, last = name.strip().partition(" ")
            user.first_name, user.last_name = first[:150], last[:150]
        if email is not None:
            user.email = email
        user.is_active = True
        user.save()
        membership, _ = AgentMembership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership, created


# --- sessions and messages ---------------------------------------------------------


def visitor_session_open(tenant: Tenant, token: str | None, *, external_id: str = "") -> Session:
    """The visitor of `token` (a new one if unknown to this tenant) and her open conversation, created
    if need be: the widget calls it at her first message (connects store nothing, see visitor_session_peek).

    A token this server signed for the tenant becomes the new visitor's token; with a verified
    `external_id` (chatbot.conversations.identity) the visitor is the tenant's one of that id, on any device.
    """
    try:
        with transaction.atomic():
            return _session_open(tenant, token, external_id)
    except IntegrityError:
        # Two tabs of one visitor opened her conversation at once; the other one won it.
        with transaction.atomic():
            return _session_open(tenant, token, external_id)


def visitor_session_peek(tenant: Tenant, token: str | None, *, external_id: str = "") -> Session:
    """What a widget connect shows, creating nothing: the known visitor and her open conversation, or
    (visitor and conversation None) a visitor to be created at her first message under `token`.

    A token only ever finds a visitor of its tenant; a verified visitor's token works only with
    her verified identity (a shared device that logged out gets a new anonymous visitor); an unknown
    token that this server did not sign is replaced by a new one.
    """
    visitor = _visitor_find(tenant, token, external_id)
    if visitor is None:
        return Session(visitor=None, conversation=None, new_visitor=True,
                       token=_token_for_new_visitor(tenant, token, external_id))
    Visitor.objects.filter(pk=visitor.pk).update(last_seen_at=timezone.now())
    return Session(visitor=visitor, conversation=selectors.conversation_open_for_visitor(visitor),
                   new_visitor=False, token=visitor.token)


def _visitor_find(tenant: Tenant, token: str | None, external_id: str) -> Visitor | None:
    if external_id:
        return Visitor.objects.filter(tenant=tenant, external_id=external_id).order_by("id").first()
    visitor = selectors.visitor_by_token(tenant, identity.clean_token(token))
    return visitor if visitor is not None and not visitor.external_id else None


def _token_for_new_visitor(tenant: Tenant, token: str | None, external_id: str) -> str:
    """The token a new visitor gets: the connect's own when this server signed it for the tenant and no
    visitor holds it (a verified visitor's may be held by her), else a new one."""
    token = identity.clean_token(token)
    if not external_id and token and identity.visitor_token_signed(tenant.id, token) \
            and not Visitor.objects.filter(token=token).exists():
        return token
    return identity.visitor_token_new(tenant.id)


def _session_open(tenant: Tenant, token: str | None, external_id: str = "") -> Session:
    if external_id:  # one visitor per verified id: creations of the same id wait for each other
        list(Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk", flat=True))
    visitor = _visitor_find(tenant, token, external_id)
    new_visitor = visitor is None
    if new_visitor:
        visitor = Visitor.objects.create(tenant=tenant, external_id=external_id,
                                         token=_token_for_new_visitor(tenant, token, external_id))
    else:
        Visitor.objects.filter(pk=visitor.pk).update(last_seen_at=timezone.now())
    conversation = selectors.conversation_open_for_visitor(visitor)
    if conversation is None:
        conversation = Conversation.objects.create(tenant=tenant, visitor=visitor)
        journal.conversation_changed(journal.conversation_fresh(conversation.id), "new conversation")
    return Session(visitor=visitor, conversation=conversation, new_visitor=new_visitor, token=visitor.token)


def _encodable(text: str) -> bool:
    """Whether `text` has a UTF-8 form (lone surrogates, which JSON can carry, have none)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_text(text: object) -> str:
    if not isinstance(text, str):
        raise ServiceError("`text` must be a string.", "invalid_text")
    if "\x00" in text:  # PostgreSQL cannot store it: the write would fail and drop the socket
        raise ServiceError("`text` must not contain NUL characters.", "invalid_text")
    if not _encodable(text):  # a lone surrogate ("\ud800"): no UTF-8 for it, so no row either
        raise ServiceError("`text` must be valid Unicode text.", "invalid_text")
    text = text.strip()
    if not text:
        raise ServiceError("The message is empty.", "empty_text")
    limit = settings.WIDGET_MAX_TEXT_LENGTH
    if len(text) > limit:
        raise ServiceError(f"The message is longer than {limit} characters.", "text_too_long")
    return text


def _clean_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not client_id.strip() or "\x00" in client_id or not _encodable(client_id):
        raise ServiceError("`client_id` must be a non-empty string.", "invalid_client_id")
    if len(client_id) > settings.WIDGET_MAX_CLIENT_ID_LENGTH:
        raise ServiceError(
            f"`client_id` is longer than {settings.WIDGET_MAX_CLIENT_ID_LENGTH} characters.", "invalid_client_id"
        )
    return client_id


def message_validate(text: object, client_id: object) -> None:
    """Refuse what message_receive would refuse, without touching the database (the widget checks a
    visitor's first message before it creates her visitor and conversation rows)."""
    _clean_text(text)
    _clean_client_id(client_id)


def ip_key(ip: str) -> str:
    """A keyed hash of a client address: enough to count order look-ups per address, not to tell it."""
    return hmac.new(settings.SECRET_KEY.encode(), f"ip:{ip}".encode(), hashlib.sha256).hexdigest()[:32] if ip else ""


def message_receive(conversation_id: int, text: object, client_id: object, *, ip: str = "") -> tuple[Message, bool]:
    """Store a visitor message once per client_id; the answer trigger hears of it on commit.

    Returns (message, created); a re-sent client_id returns the stored message. `ip`: the address it came
    from, kept on the visitor as a keyed hash (Visitor.ip_key) for the store actions' look-up limits.
    """
    text = _clean_text(text)
    client_id = _clean_client_id(client_id)
    try:
        with transaction.atomic():
            conversation = journal.conversation_lock(conversation_id)
            existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
            if existing:
                delivery.answer_resend(existing, conversation)  # still unanswered: queued again
                return existing, False
            if conversation.status == Conversation.Status.RESOLVED:
                ownership.conversation_reopen(conversation)
            message = journal.message_append(conversation, Message.Sender.VISITOR, text, client_id=client_id,
                                             **delivery.answer_fields(conversation))
            if (key := ip_key(ip)) and conversation.visitor.ip_key != key:
                Visitor.objects.filter(pk=conversation.visitor_id).update(ip_key=key)
            return message, True
    except IntegrityError:
        # A concurrent duplicate won the race (only possible without row locks, e.g. SQLite)...
        found = Message.objects.filter(conversation_id=conversation_id, client_id=client_id).first()
        if found is None:
            # ...or this resolved conversation cannot reopen: the visitor has started another one.
            raise ServiceError("This conversation is closed; reload the chat to continue.", "conversation_closed")
        return found, False


def message_labels_store(message_id: int, labels, language: str | None = None) -> None:
    """Store a classifier result (inference.labelling.MessageLabels or alike) and the detected language
    (nlu.language; None: leave it as it is) on a visitor message."""
    message_label(
        message_id, intent=labels.intent, intent_confidence=labels.intent_confidence,
        sentiment=labels.sentiment, sentiment_confidence=labels.sentiment_confidence,
        versions={"intent": getattr(labels, "intent_version", ""), "sentiment": getattr(labels, "sentiment_version", "")},
        language=language if language is not None else getattr(labels, "language", None),
    )


def message_label(message_id: int, *, intent: str = "", intent_confidence: float | None = None,
                  sentiment: str = "", sentiment_confidence: float | None = None,
                  versions: dict | None = None, language: str | None = None) -> None:
    """Store what the classifiers (of `versions`) said about a visitor message; the inbox shows the
    latest sentiment and the conversation's language (its latest message with a clear one)."""
    with transaction.atomic():
        message = Message.objects.filter(pk=message_id).first()
        if message is None:
            return
        fields = {"language": language[:10]} if language is not None else {}
        Message.objects.filter(pk=message_id).update(
            intent=intent, intent_confidence=intent_confidence,
            sentiment=sentiment, sentiment_confidence=sentiment_confidence,
            label_versions={k: v for k, v in (versions or {}).items() if v}, **fields,
        )
        conversation = journal.conversation_lock(message.conversation_id)
        changed = []
        if sentiment and conversation.last_sentiment != sentiment:
            conversation.last_sentiment = sentiment
            changed.append("last_sentiment")
        if language and conversation.language != language[:10]:
            conversation.language = language[:10]
            changed.append("language")
        if changed:
            conversation.save(update_fields=changed)
            journal.conversation_changed(conversation, "sentiment" if "last_sentiment" in changed else "language")


def bot_reply_store(reply_to_id: int, text: str, **why) -> Message | None:
    """Store and publish the bot's answer to a visitor message, once.

    `why` holds the reply's reasons (grounding, model_version, score, latency_ms, ...).
    Returns None when the message was answered already or a human has taken over.
    """
    with transaction.atomic():
        visitor_message = Message.objects.filter(pk=reply_to_id).first()
        if visitor_message is None:  # erased (e.g. a data-subject delete) while the bot was thinking
            return None
        conversation = journal.conversation_lock(visitor_message.conversation_id)
        if conversation.status != Conversation.Status.BOT:
            return None
        if Message.objects.filter(reply_to_id=reply_to_id, sender=Message.Sender.BOT).exists():
            return None
        return journal.message_append(conversation, Message.Sender.BOT, text, reply_to_id=reply_to_id, **why)


def conversations_resolve_idle(hours: int | None = None) -> int:
    """Close conversations nobody wrote in for `hours`; the visitor's next visit starts afresh."""
    hours = settings.CONVERSATION_IDLE_HOURS if hours is None else hours
    cutoff = timezone.now() - timedelta(hours=hours)
    ids = Conversation.objects.filter(updated_at__lt=cutoff).exclude(status=Conversation.Status.RESOLVED)
    return sum(ownership.conversation_resolve_idle(pk, cutoff) for pk in ids.values_list("id", flat=True)[:5000])


def conversations_assign_waiting(tenant_ids: list[int] | None = None) -> int:
    """Give conversations waiting for a person to agents with room, in stores that assign automatically and are
    open (chatbot.conversations.assignment), the longest-waiting first; a store's turn ends at its first one that
    nobody can take. Returns how many were assigned."""
    assigned, full = 0, set()
    for conversation_id, tenant_id in assignment.waiting_to_assign(tenant_ids):
        if tenant_id in full:
            continue
        done = ownership.conversation_assign_waiting(conversation_id)
        if done:
            assigned += 1
        elif done is False:
            full.add(tenant_id)
    return assigned


def on_capacity_freed(event: dict) -> None:
    """A `conversation_changed` subscriber: when an agent lets a conversation go (resolved, handed back, passed to
    someone else), her store's waiting conversations are given out again, without waiting for the sweep."""
    previous, conversation = event.get("previous") or {}, event["conversation"]
    assignee = (conversation.get("assignee") or {}).get("id")
    if previous.get("status") == Conversation.Status.HUMAN and (
            conversation["status"] != Conversation.Status.HUMAN or previous.get("assignee") != assignee):
        conversations_assign_waiting([event["tenant"]])


def typing_set(conversation_id: int, sender: str, on: bool, tenant_id: int | None = None) -> None:
    """Tell the other side someone is typing; nothing is stored."""
    if tenant_id is None:
        tenant_id = Conversation.objects.filter(pk=conversation_id).values_list("tenant_id", flat=True).first()
        if tenant_id is None:
            return
    events.deliver({"type": events.TYPING, "tenant": tenant_id, "conversation": conversation_id,
                    "sender": sender, "on": bool(on)})


# --- the visitor's side of a hand-off ------------------------------------------------


def conversation_rate(conversation_id: int, rating: object) -> Conversation:
    """The visitor's 1-5 rating (CSAT) of a resolved conversation; a new rating replaces the old."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise ServiceError("`rating` must be a whole number from 1 to 5.", "invalid_rating")
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        if conversation.status != Conversation.Status.RESOLVED:
            raise ServiceError("A conversation can be rated once it is resolved.", "invalid_state")
        conversation.csat = rating
        conversation.save(update_fields=["csat"])
        journal.conversation_changed(conversation, "rated")
        return conversation


def visitor_contact_leave(conversation_id: int, email: object, transcript: object = None) -> Visitor:
    """The e-mail address a visitor leaves when nobody is online, so the team can write back (replies written
    while she is away are mailed to it: chatbot.mail). `transcript` true: she also wants the conversation's
    transcript mailed when it is resolved (false: no longer; None: as it was)."""
    if transcript is not None and not isinstance(transcript, bool):
        raise ServiceError("`transcript` must be true or false.", "invalid_transcript")
    if not isinstance(email, str) or len(email) > 254 or not _encodable(email):
        raise ServiceError("Please give a valid e-mail address.", "invalid_email")
    email = email.strip()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ServiceError("Please give a valid e-mail address.", "invalid_email") from None
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation_id)
        Visitor.objects.filter(pk=conversation.visitor_id).update(email=email)
        conversation.visitor.email = email
        if transcript is not None and conversation.transcript_requested != transcript:
            conversation.transcript_requested = transcript
            conversation.save(update_fields=["transcript_requested"])
        journal.conversation_changed(conversation, "contact left")
        return conversation.visitor


# --- feedback ----------------------------------------------------------------------


def feedback_recorded_emit(feedback: Feedback, tenant_id: int) -> None:
    """The `feedback_recorded` event of a rating or correction (the console, the review queue's labels)."""
    events.emit({
        "type": events.FEEDBACK_RECORDED,
        "tenant": tenant_id,
        "conversation": feedback.message.conversation_id,
        "message": feedback.message_id,
        "feedback": {
            "id": feedback.id, "source": feedback.source, "rating": feedback.rating,
            "correct_reply": feedback.correction, "correct_intent": feedback.corrected_intent,
            "agent": feedback.agent_id,
        },
    })


def feedback_visitor_rate(conversation_id: int, message_id: object, rating: object) -> Feedback:
    """The visitor's thumbs up or down on a bot reply of her own conversation; a new rating replaces the old."""
    if rating not in Feedback.Rating.values:
        raise ServiceError("`rating` must be 'up' or 'down'.", "invalid_rating")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ServiceError("`message_id` must be an integer.", "invalid_message_id")
    message = Message.objects.select_related("conversation", "reply_to").filter(
        pk=message_id, conversation_id=conversation_id, sender=Message.Sender.BOT
    ).first()
    if message is None:
        raise NotFound("No bot message with that id in this conversation.", "message_not_found")
    with transaction.atomic():
        feedback, _ = Feedback.objects.update_or_create(
            message=message, source=Feedback.Source.VISITOR,
            defaults={"rating": rating, "original_reply": message.text,
                      "original_intent": message.reply_to.intent if message.reply_to else ""},
        )
        feedback_recorded_emit(feedback, message.conversation.tenant_id)
    return feedback


def feedback_agent_record(agent: AbstractBaseUser, message_id: object, rating: object = None,
                          correct_reply: object = None, correct_intent: object = None) -> Feedback:
    """An agent's verdict on a bot reply: thumbs, the right reply, the right intent; one record per agent."""
    message = access.access_message(agent, message_id)
    if message.sender != Message.Sender.BOT:
        raise ServiceError("Only the bot's replies take feedback.", "not_a_bot_reply")
    if rating not in (None, "", *Feedback.Rating.values):
        raise ServiceError("`rating` must be 'up' or 'down'.", "invalid_rating")
    if correct_reply is not None:
        correct_reply = _clean_text(correct_reply) if correct_reply != "" else ""
    if correct_intent is not None:
        if not isinstance(correct_intent, str) or len(correct_intent.strip()) > 100 or "\x00" in correct_intent \
                or not _encodable(correct_intent):
            raise ServiceError("`correct_intent` must be an intent name of at most 100 characters.", "invalid_intent")
        correct_intent = correct_intent.strip()
    if not rating and not correct_reply and not correct_intent:
        raise ServiceError("Give a rating, the right reply or the right intent.", "empty_feedback")
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().filter(
            message=message, source=Feedback.Source.AGENT, agent=agent
        ).first() or Feedback(message=message, source=Feedback.Source.AGENT, agent=agent)
        feedback.original_reply = message.text
        feedback.original_intent = message.reply_to.intent if message.reply_to else ""
        if rating:
            feedback.rating = rating
        elif correct_reply or correct_intent:
            feedback.rating = feedback.rating or Feedback.Rating.DOWN
        if correct_reply is not None:
            feedback.correction = correct_reply
        if correct_intent is not None:
            feedback.corrected_intent = correct_intent
        feedback.save()
        feedback_recorded_emit(feedback, message.conversation.tenant_id)
    return feedback


# --- the agent's side --------------------------------------------------------------


def agent_message_send(agent: AbstractBaseUser, conversation_id: object, text: object, client_id: object, *,
                       private: bool = False, suggestion: object = None) -> tuple[Message, bool]:
    """An agent's reply (reaches the visitor) or private note (never does); idempotent on client_id.

    Replying to a conversation the bot or nobody holds takes it over first, so the bot stops;
    one another agent holds is refused with `assigned_to_other`.
    """
    text = _clean_text(text)
    client_id = _clean_client_id(client_id)
    with transaction.atomic():
        conversation = access.access_conversation(agent, conversation_id, lock=True)
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing:
            return existing, False
        holds_it = conversation.status == Conversation.Status.HUMAN and conversation.assigned_agent_id == agent.pk
        if private or holds_it:
            # A note, or a reply to a conversation she holds: one transaction, under the lock taken above.
            if not private:
                hours.first_response_mark(conversation)
            message = journal.message_append(conversation, Message.Sender.AGENT, text, client_id=client_id,
                                             author=agent, private=private,
                                             **mail.reply_fields(conversation, private=private))
            if not private:
                assist.suggestion_settle(conversation.id, message, suggestion)
            return message, True
        if conversation.status == Conversation.Status.RESOLVED:
            raise InvalidState("This conversation is resolved; the visitor's next message reopens it.")
        if conversation.status == Conversation.Status.HUMAN:
            raise AssignedToOther(f"{display_name(conversation.assigned_agent)} is handling this conversation.")
    # The bot or nobody holds it: she takes it over (so the bot stops), then replies.
    ownership.conversation_take_over(conversation.id, agent=agent)
    with transaction.atomic():
        conversation = journal.conversation_lock(conversation.id)
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing:
            return existing, False
        if conversation.status != Conversation.Status.HUMAN or conversation.assigned_agent_id != agent.pk:
            raise AssignedToOther("Another agent took this conversation meanwhile.")
        hours.first_response_mark(conversation)
        message = journal.message_append(conversation, Message.Sender.AGENT, text, client_id=client_id,
                                         author=agent, **mail.reply_fields(conversation))
        assist.suggestion_settle(conversation.id, message, suggestion)
        return message, True


def conversation_mark_read(agent: AbstractBaseUser, conversation_id: object) -> Conversation:
    """An agent opened the conversation: its unread count goes to zero."""
    conversation = access.access_conversation(agent, conversation_id)
    if journal.unread_clear(conversation.id):
        with transaction.atomic():
            journal.conversation_changed(journal.conversation_lock(conversation.id), "read")
        conversation.unread = 0
    return conversation

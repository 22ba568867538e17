"""Data of the platform: tenants, visitors, conversations, messages, knowledge,
training examples, feedback and the model registry. Workflows live in services."""
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from chatbot.content import untranslated_note


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(24)


def new_visitor_token() -> str:
    return "v_" + secrets.token_urlsafe(24)


# The store's texts a visitor reads from the bot, which a store may also write in other languages.
# `untranslated_note` has no field of its own: it prefixes an answer sent in the store's main language
# (Tenant.Untranslated.MAIN_LANGUAGE); chatbot.content holds its default wording per language.
TRANSLATED_TEXTS = ("greeting", "fallback_text", "handoff_text", "complaint_text", "no_agent_text",
                    "untranslated_note")
# The most a store may write in one text of the bot or one version of an answer.
CONTENT_MAX_LENGTH = 4000
_LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")


def language_code(value: object) -> str:
    """The ISO 639-1 code of a language tag ("pt-BR" -> "pt"), or "" for anything else."""
    code = value.split("-")[0].split("_")[0].strip().lower() if isinstance(value, str) else ""
    return code if _LANGUAGE_CODE.match(code) else ""


def translations_validate(value: object) -> None:
    """{"es": {"greeting": "¡Hola!", ...}, ...}: ISO 639-1 codes, the texts of TRANSLATED_TEXTS, non-empty strings."""
    for language, texts in _language_versions(value, "texts", '{"es": {"greeting": "¡Hola!"}}').items():
        if not isinstance(texts, dict):
            raise ValidationError(f"The texts of {language!r} must be an object of text name to text.")
        for name, text in texts.items():
            if name not in TRANSLATED_TEXTS:
                raise ValidationError(f"{name!r} is not a text the bot sends; use {', '.join(TRANSLATED_TEXTS)}.")
            if not isinstance(text, str) or not text.strip() or len(text) > 1000:
                raise ValidationError(f"The {language} {name} must be a text of 1 to 1000 characters.")


def languages_validate(value: object) -> None:
    """["en", "es"]: distinct ISO 639-1 codes, the main language first (a name like "english" would hand every
    visitor to a person, since no message is detected as it)."""
    if not isinstance(value, list):
        raise ValidationError('List the languages as two-letter codes, main language first, e.g. ["en", "es"].')
    for code in value:
        if not isinstance(code, str) or language_code(code) != code:
            raise ValidationError(f"{code!r} is not a two-letter language code (e.g. en, es, de).")
    if len(set(value)) != len(value):
        raise ValidationError("Each language is listed once.")


def _language_versions(value: object, what: str, example: str) -> dict:
    """`value` when it is an object keyed by two-letter language codes; else a ValidationError."""
    if not isinstance(value, dict):
        raise ValidationError(f"Write the {what} per language, e.g. {example}.")
    for language in value:
        if language_code(language) != language:
            raise ValidationError(f"{language!r} is not a two-letter language code (e.g. es, de).")
    return value


def _content_check(language: str, name: str, text: object) -> None:
    if not isinstance(text, str) or not text.strip() or len(text) > CONTENT_MAX_LENGTH:
        raise ValidationError(f"The {language} {name} must be a text of 1 to {CONTENT_MAX_LENGTH} characters.")


def entry_translations_validate(value: object) -> None:
    """{"es": {"question": "...", "answer": "..."}, ...}: a knowledge entry in other languages, both texts."""
    for language, version in _language_versions(value, "versions", '{"es": {"question": "…", "answer": "…"}}').items():
        if not isinstance(version, dict) or set(version) != {"question", "answer"}:
            raise ValidationError(f"The {language} version needs a question and an answer, and nothing else.")
        for name in ("question", "answer"):
            _content_check(language, name, version[name])


def reply_translations_validate(value: object) -> None:
    """{"es": "...", ...}: a canned reply in other languages."""
    for language, text in _language_versions(value, "versions", '{"es": "…"}').items():
        _content_check(language, "text", text)


# Personal data a visitor may give (nlu.pii's kinds), which the hand-off summary lists for agents.
DETAIL_KINDS = ("email", "order", "phone", "address", "card", "iban")


def masked_details_default() -> list[str]:
    return ["card", "iban"]


def masked_details_validate(value: object) -> None:
    if not isinstance(value, list) or any(kind not in DETAIL_KINDS for kind in value):
        raise ValidationError(f"List the kinds to mask among {', '.join(DETAIL_KINDS)}, e.g. [\"card\", \"phone\"].")


class Tenant(models.Model):
    """A store that embeds the widget; owns its visitors, knowledge and models."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    public_key = models.CharField(max_length=64, unique=True, default=new_public_key)
    allowed_origins = models.JSONField(
        default=list, blank=True,
        help_text='Origins allowed to open the widget socket, e.g. ["https://shop.example"]; "*" allows any.',
    )
    greeting = models.CharField(max_length=500, default="Hi! How can we help you today?")
    fallback_text = models.CharField(
        max_length=1000,
        default="Sorry, I didn't quite get that. Could you put it another way? You can also ask to talk to a person.",
    )
    handoff_text = models.CharField(
        max_length=500, default="I'm handing you over to a member of our team. They'll reply here shortly."
    )
    # Hand-off policy thresholds (see inference.policy).
    min_intent_confidence = models.FloatField(default=0.45)
    min_retrieval_score = models.FloatField(default=0.40)
    # How close a message must be to a labelled example for that example's reply to answer it.
    min_intent_reply_score = models.FloatField(default=0.50)
    min_responder_score = models.FloatField(default=0.35)
    negative_turns_to_handoff = models.PositiveSmallIntegerField(default=2)
    # Fallback replies in a row after which the conversation goes to a person (0: never).
    fallbacks_to_handoff = models.PositiveSmallIntegerField(default=2)
    complaint_text = models.CharField(
        max_length=500,
        default="I'm really sorry about this. I can hand you over to a member of our team right away: just say \"talk to a person\".",
        help_text="The bot's reply to a strong complaint: an apology and the offer of a person.",
    )
    no_agent_text = models.CharField(
        max_length=500,
        default="Our team isn't online right now. Leave your e-mail address and we'll get back to you.",
        help_text="Shown when a conversation is handed off and none of the store's agents is connected.",
    )
    # Generation settings: max_new_tokens, num_beams, no_repeat_ngram_size, temperature.
    generation = models.JSONField(default=dict, blank=True)
    # Languages the bot answers (ISO 639-1); a message in another one goes to people who speak it.
    languages = models.JSONField(default=list, blank=True, validators=[languages_validate],
                                 help_text='Main language first, e.g. ["en", "es"]; empty: every language, in English.')
    # A message in a language the store serves but wrote no answer in: a person answers it (the default),
    # or the bot answers in the store's main language (its first listed one) with a line saying so.
    class Untranslated(models.TextChoices):
        HAND_OFF = "hand_off", "Hand the conversation to a person"
        MAIN_LANGUAGE = "main_language", "Answer in the main language, with a line saying so"

    untranslated = models.CharField(
        max_length=20, choices=Untranslated.choices, default=Untranslated.HAND_OFF,
        help_text="When the store wrote no answer in the visitor's language (see docs/languages.md).",
    )
    # The texts above in other languages; a text the store did not write in a language is sent as above.
    translations = models.JSONField(
        default=dict, blank=True, validators=[translations_validate],
        help_text='The bot\'s texts in other languages, e.g. {"es": {"greeting": "¡Hola!", "handoff_text": "…"}}.',
    )
    # Identity verification: the store's server signs the visitor's id (HMAC-SHA256) with this secret.
    identity_secret = models.CharField(max_length=128, blank=True, default="")
    identity_secret_previous = models.CharField(
        max_length=128, blank=True, default="", help_text="Still accepted after a rotation, until cleared.",
    )
    require_identity = models.BooleanField(default=False, help_text="Refuse visitors without a signed identity.")
    # Who gets a hand-off (chatbot.conversations.assignment): nobody until an agent claims it, the next agent
    # in turn, or the online agent with the fewest open conversations; agents at capacity are skipped.
    class Assignment(models.TextChoices):
        MANUAL = "manual", "Agents claim hand-offs themselves"
        ROUND_ROBIN = "round_robin", "Round-robin among online agents with capacity"
        LEAST_LOADED = "least_loaded", "The online agent with the fewest open conversations"

    assignment = models.CharField(max_length=20, choices=Assignment.choices, default=Assignment.MANUAL)
    # Business hours (chatbot.conversations.hours): the team's time zone, its weekly schedule
    # ({"mon": [["09:00", "17:30"]], ...}; empty: always open) and its holidays (["2026-12-25", ...]).
    timezone = models.CharField(max_length=64, default="UTC")
    business_hours = models.JSONField(default=dict, blank=True)
    holidays = models.JSONField(default=list, blank=True)
    # The first-response target for a handed-off conversation, in minutes (null: none); the inbox shows a timer.
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    # The kinds of personal data the hand-off summary shows masked to agents (chatbot.conversations.summary).
    masked_details = models.JSONField(default=masked_details_default, blank=True, validators=[masked_details_validate],
                                      help_text='e.g. ["card", "iban", "phone"]; kinds: ' + ", ".join(DETAIL_KINDS))
    # Per-tenant overrides of the rate limits in settings, e.g. {"visitor_messages": [30, 60]}.
    rate_limits = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def listed_languages(self) -> list[str]:
        """The ISO 639-1 codes it lists, in its order (a tag like "pt-BR" read as "pt")."""
        return [code for code in (language_code(x) for x in self.languages or []) if code]

    @property
    def main_language(self) -> str:
        """The language its own fields are written in: the first one it lists, else English."""
        return next(iter(self.listed_languages), "en")

    def text(self, name: str, language: str = "") -> str:
        """The store's text `name` (one of TRANSLATED_TEXTS) in `language` when it wrote one, else as above."""
        texts = (self.translations or {}).get(language_code(language))
        text = texts.get(name) if isinstance(texts, dict) else None
        if isinstance(text, str) and text.strip():
            return text
        if name == "untranslated_note":
            return untranslated_note(language_code(language), self.main_language)
        return getattr(self, name)

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin; a client without one is not a page on another site."""
        if not origin:
            return True
        allowed = [o.rstrip("/").lower() for o in self.allowed_origins or []]
        return "*" in allowed or origin.rstrip("/").lower() in allowed


class AgentMembership(models.Model):
    """A user's seat in a tenant's team: agents answer, managers also review and configure."""

    class Role(models.TextChoices):
        AGENT = "agent"
        MANAGER = "manager"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    # Languages the agent answers in (ISO 639-1), for conversations the bot cannot serve.
    languages = models.JSONField(default=list, blank=True)
    # Open conversations automatic assignment gives her at most (0: she is never assigned automatically).
    capacity = models.PositiveSmallIntegerField(default=5)
    last_assigned_at = models.DateTimeField(null=True, blank=True)  # round-robin's turn

    # How she hears of a hand-off while no agent of the store is online.
    class Notify(models.TextChoices):
        EACH = "each", "An e-mail for each hand-off"
        DIGEST = "digest", "A digest e-mail"
        NONE = "none", "No e-mail"

    notify = models.CharField(max_length=10, choices=Notify.choices, default=Notify.EACH)
    digest_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class Visitor(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="visitors")
    token = models.CharField(max_length=64, unique=True, default=new_visitor_token)
    external_id = models.CharField(max_length=200, blank=True, default="", help_text="Verified id from the store.")
    # Left by the visitor when no agent was online, so the team can write back.
    email = models.EmailField(max_length=254, blank=True, default="")
    # A keyed hash of the address she last wrote from (never the address): order look-ups are limited by it.
    ip_key = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "external_id"])]

    def __str__(self) -> str:  # never the token: it lets whoever holds it into her conversation
        return f"Visitor {self.pk}"


class HandoffReason(models.TextChoices):
    """Why the bot gave a conversation to people (or, `fallback`, why a bot reply was its fallback text).

    Stored as `handoff_code` beside the free-text `handoff_reason`, which keeps the detail ("language: es",
    "low intent confidence (0.31)"): review, insights and fixes filter and group by the code."""

    ASKED_FOR_PERSON = "asked_for_person", "Asked for a person"
    NEGATIVE_SENTIMENT = "negative_sentiment", "Negative sentiment"
    OUT_OF_SCOPE = "out_of_scope", "Out of scope"
    LOW_CONFIDENCE = "low_confidence", "Low intent confidence"
    LOW_RESPONDER_SCORE = "low_responder_score", "Low responder score"
    REPEATED_FALLBACK = "repeated_fallback", "Repeated fallbacks"
    LANGUAGE = "language", "Language"
    UNTRANSLATED = "untranslated", "No answer written in the visitor's language"
    BOT_UNAVAILABLE = "bot_unavailable", "The bot was unavailable"
    ACTION_FAILED = "action_failed", "An action failed"
    ACTION_INCOMPLETE = "action_incomplete", "Order details not given"
    ACTION_LIMITED = "action_limited", "Too many unmatched order look-ups"
    FALLBACK = "fallback", "Fallback reply"  # a bot reply, not a hand-off: nothing close enough to answer
    OTHER = "other", "Other"  # a reason written before the codes that none of them fits


class Conversation(models.Model):
    """Who owns it is `status` (+ `assigned_agent`), changed only by chatbot.conversations.ownership."""

    class Status(models.TextChoices):
        BOT = "bot"
        WAITING = "waiting"  # handed off, nobody assigned yet
        HUMAN = "human"  # an agent holds it
        RESOLVED = "resolved"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="conversations")
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOT, db_index=True)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    # The latest hand-off: its code, and its detail in words.
    handoff_code = models.CharField(max_length=20, choices=HandoffReason.choices, blank=True, default="")
    handoff_reason = models.CharField(max_length=200, blank=True, default="")
    # Highest seq handed out; bumped under a row lock so seq grows by one.
    last_seq = models.PositiveIntegerField(default=0)
    # Kept with every message so the inbox reads one row per conversation.
    last_message_text = models.CharField(max_length=200, blank=True, default="")
    last_message_sender = models.CharField(max_length=10, blank=True, default="")
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_sentiment = models.CharField(max_length=10, blank=True, default="")
    # The language of the visitor's latest message that had a clear one (ISO 639-1; see nlu.language).
    language = models.CharField(max_length=10, blank=True, default="")
    # The oldest visitor message no person or bot has answered yet (null: nobody waits).
    waiting_since = models.DateTimeField(null=True, blank=True)
    # Visitor messages since an agent last opened the conversation.
    unread = models.PositiveIntegerField(default=0)
    csat = models.PositiveSmallIntegerField(null=True, blank=True)
    # A store action the bot is in the middle of (chatbot.actions.dialogue): what it asked for, what it holds.
    action_state = models.JSONField(default=dict, blank=True)
    # The first-response target of its latest hand-off (Tenant.first_response_minutes, in business hours),
    # and when a person first answered after it.
    first_response_due = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    # The visitor asked for the transcript by e-mail: sent when the conversation is resolved.
    transcript_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "status", "-updated_at"]),
            models.Index(fields=["tenant", "-updated_at"]),
            models.Index(fields=["assigned_agent", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["visitor"], condition=~Q(status="resolved"), name="one_open_conversation_per_visitor"
            ),
            models.CheckConstraint(
                condition=Q(csat__isnull=True) | Q(csat__gte=1, csat__lte=5), name="csat_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED


class Message(models.Model):
    class Sender(models.TextChoices):
        VISITOR = "visitor"
        BOT = "bot"
        AGENT = "agent"
        SYSTEM = "system"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    sender = models.CharField(max_length=10, choices=Sender.choices)
    text = models.TextField()
    client_id = models.CharField(max_length=100, null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # An agent's private note: shown to agents only, never sent to the visitor.
    private = models.BooleanField(default=False)
    # The visitor message a bot reply answers: one answer per visitor message.
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    created_at = models.DateTimeField(auto_now_add=True)
    # Labels of a visitor message (filled by the worker).
    intent = models.CharField(max_length=100, blank=True, default="")
    intent_confidence = models.FloatField(null=True, blank=True)
    sentiment = models.CharField(max_length=10, blank=True, default="")
    sentiment_confidence = models.FloatField(null=True, blank=True)
    language = models.CharField(max_length=10, blank=True, default="")  # detected, ISO 639-1
    # Versions of the models that labelled a visitor message, e.g. {"intent": "2026...", "sentiment": "..."}.
    label_versions = models.JSONField(default=dict, blank=True)

    class AnswerState(models.TextChoices):
        QUEUED = "queued"
        ANSWERING = "answering"
        ANSWERED = "answered"
        HANDED_OFF = "handed_off"
        FAILED = "failed"

    # Delivery of a visitor message's answer: recovery sweeps and idempotency read this.
    answer_state = models.CharField(max_length=12, choices=AnswerState.choices, blank=True, default="")
    answer_attempts = models.PositiveSmallIntegerField(default=0)
    answer_updated_at = models.DateTimeField(null=True, blank=True)
    # A manager's review of this message in the review queue (its labels are Feedback records).
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The "why" of a bot reply: grounding entries, model version, scores, hand-off reason.
    model_version = models.CharField(max_length=100, blank=True, default="")
    latency_ms = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    grounding = models.JSONField(default=list, blank=True)
    # A hand-off notice's reason, or a fallback reply's (code `fallback`): the code, and the detail in words.
    handoff_code = models.CharField(max_length=20, choices=HandoffReason.choices, blank=True, default="")
    handoff_reason = models.CharField(max_length=200, blank=True, default="")
    # Buttons the widget shows under a bot reply (e.g. ["Yes", "No"]); a click sends the label as a message.
    choices = models.JSONField(default=list, blank=True)

    class Channel(models.TextChoices):
        WIDGET = "widget"
        EMAIL = "email"  # a visitor's answer by e-mail (chatbot.mail.inbound)

    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WIDGET)

    class EmailState(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        FAILED = "failed"

    # An agent's reply e-mailed to a visitor who is not connected: its delivery, and the mail's Message-ID
    # (an inbound mail's own, for a visitor message that came by e-mail: a mail is stored once).
    email_state = models.CharField(max_length=10, choices=EmailState.choices, blank=True, default="")
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_message_id = models.CharField(max_length=255, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["conversation_id", "seq"]
        indexes = [
            models.Index(fields=["answer_state", "answer_updated_at"], name="message_answer_state",
                         condition=Q(answer_state__in=["queued", "answering"])),
            # The mail sweep's read: the few replies still owed by e-mail.
            models.Index(fields=["id"], name="message_email_queued", condition=Q(email_state="queued")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="uniq_message_seq"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"], condition=Q(client_id__isnull=False), name="uniq_message_client_id"
            ),
            models.UniqueConstraint(
                fields=["reply_to"], condition=Q(sender="bot"), name="uniq_bot_reply_per_message"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sender}#{self.seq}: {self.text[:40]}"


class ConversationTransition(models.Model):
    """One change of hands of a conversation: who did it and why (written by chatbot.conversations.ownership)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=10, choices=Conversation.Status.choices)
    to_status = models.CharField(max_length=10, choices=Conversation.Status.choices)
    from_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The person who made the change; empty for the bot or the system.",
    )
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation_id", "id"]


class Feedback(models.Model):
    """A rating or correction of a bot reply, by the visitor or an agent; feeds retraining."""

    class Source(models.TextChoices):
        VISITOR = "visitor"
        AGENT = "agent"

    class Rating(models.TextChoices):
        UP = "up"
        DOWN = "down"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    source = models.CharField(max_length=10, choices=Source.choices)
    rating = models.CharField(max_length=4, choices=Rating.choices, blank=True, default="")
    # The right reply an agent wrote (empty: none); `original_reply` is what the bot said.
    correction = models.TextField(blank=True, default="")
    original_reply = models.TextField(blank=True, default="")
    # The intent of the visitor message the reply answered, as labelled and as corrected.
    original_intent = models.CharField(max_length=100, blank=True, default="")
    corrected_intent = models.CharField(max_length=100, blank=True, default="")
    # The sentiment of that visitor message, as labelled and as corrected (the review queue sets it).
    original_sentiment = models.CharField(max_length=10, blank=True, default="")
    corrected_sentiment = models.CharField(max_length=10, blank=True, default="")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message"], condition=Q(source="visitor"), name="uniq_visitor_feedback_per_message"
            ),
            models.UniqueConstraint(
                fields=["message", "agent"], condition=Q(source="agent"), name="uniq_agent_feedback_per_message"
            ),
        ]


class CannedReply(models.Model):
    """A tenant's saved answer, inserted in the console by typing /shortcut."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="canned_replies")
    shortcut = models.SlugField(max_length=50)
    text = models.TextField()  # in the store's main language
    translations = models.JSONField(default=dict, blank=True, validators=[reply_translations_validate],
                                    help_text='The reply in other languages, e.g. {"es": "…"}.')
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]
        verbose_name_plural = "canned replies"
        constraints = [models.UniqueConstraint(fields=["tenant", "shortcut"], name="uniq_canned_shortcut")]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class AssistSuggestion(models.Model):
    """Replies suggested to agents for one visitor message, and what the agent did with them."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"  # sent as suggested
        EDITED = "edited"  # inserted, then changed before sending
        IGNORED = "ignored"  # the agent wrote a reply of her own

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="suggestions")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="suggestion")
    texts = models.JSONField(default=list)
    source = models.CharField(max_length=50, blank=True, default="")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    chosen = models.PositiveSmallIntegerField(null=True, blank=True)
    reply = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class AgentPresence(models.Model):
    """An open agent socket; a row not refreshed for AGENT_PRESENCE_TTL seconds counts as gone."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presences")
    channel_name = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(db_index=True)


class KnowledgeEntry(models.Model):
    """A question/answer fact of a tenant; grounds the bot's replies."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="knowledge")
    question = models.TextField()  # question and answer in the store's main language
    answer = models.TextField()
    translations = models.JSONField(
        default=dict, blank=True, validators=[entry_translations_validate],
        help_text='The entry in other languages, e.g. {"es": {"question": "…", "answer": "…"}}.',
    )
    category = models.CharField(max_length=50, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "knowledge entries"
        indexes = [models.Index(fields=["tenant", "is_active"])]

    def __str__(self) -> str:
        return self.question[:80]


class TrainingExample(models.Model):
    """A labelled visitor message of a tenant: intent, and optionally the reply it should get."""

    class Source(models.TextChoices):
        SEED = "seed"
        IMPORT = "import"
        AGENT = "agent"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="training_examples")
    text = models.TextField()
    intent = models.CharField(max_length=100, blank=True, default="", db_index=True)
    response = models.TextField(blank=True, default="")
    # The language of text and response (ISO 639-1); blank: the store's main language.
    language = models.CharField(max_length=10, blank=True, default="")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SEED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)  # keys the workers' cache of intent replies

    def __str__(self) -> str:
        return f"[{self.intent}] {self.text[:60]}"


class SentimentExample(models.Model):
    """A labelled message for the one global sentiment model."""

    class Label(models.TextChoices):
        NEGATIVE = "negative"
        NEUTRAL = "neutral"
        POSITIVE = "positive"

    text = models.TextField()
    label = models.CharField(max_length=10, choices=Label.choices)
    source = models.CharField(max_length=10, default="seed")
    created_at = models.DateTimeField(auto_now_add=True)


class ModelVersion(models.Model):
    """A trained model on disk (one folder per version under MODELS_DIR) and where it stands.

    A retrain registers a candidate; the gate (inference.gate) promotes it to active or rejects it,
    storing both sets of scores in `evaluations` and why in `decision`. Promotion retires the
    version it replaces; a rollback makes the previous one active again.
    """

    class Kind(models.TextChoices):
        INTENT = "intent"
        SENTIMENT = "sentiment"
        RESPONDER = "responder"

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        REJECTED = "rejected"

    class Serving(models.TextChoices):
        """Responders only: whom the active version's replies reach."""

        VISITORS = "visitors"  # it beat the retrieval / intent-reply answer on the frozen set
        ASSIST = "assist"  # it did not: its replies only feed agents' suggestions

    kind = models.CharField(max_length=20, choices=Kind.choices)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="model_versions")
    version = models.CharField(max_length=100)
    path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)  # training's own (validation) figures
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                               help_text="The active version when this one was trained.")
    data_hash = models.CharField(max_length=64, blank=True, default="", help_text="sha256 of the training data.")
    evaluations = models.JSONField(default=dict, blank=True, help_text="Scores keyed by evaluation set.")
    decision = models.JSONField(default=dict, blank=True, help_text="The gate's verdict and its reasons.")
    serving = models.CharField(max_length=10, choices=Serving.choices, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "tenant"], condition=Q(status="active"), name="one_active_model_per_kind_status"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.version}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class EvalExample(models.Model):
    """A held-out example a candidate model is judged on, never trained on.

    `frozen`: drawn once per tenant and kind (stratified) from its data. `corrections`: grows with every
    agent correction; a candidate must fix most of them.
    """

    class Split(models.TextChoices):
        FROZEN = "frozen"
        CORRECTIONS = "corrections"

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="eval_examples")
    kind = models.CharField(max_length=20, choices=ModelVersion.Kind.choices)
    split = models.CharField(max_length=12, choices=Split.choices)
    text = models.TextField()
    label = models.CharField(max_length=100, blank=True, default="")  # intent or sentiment
    reply = models.TextField(blank=True, default="")  # responders: the reference reply
    feedback = models.ForeignKey(Feedback, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "kind", "split"])]

    def __str__(self) -> str:
        return f"{self.kind}/{self.split}: [{self.label}] {self.text[:60]}"


class TrainingRun(models.Model):
    """One retrain of a tenant's model kind, from request to the gate's verdict; what the console shows."""

    class Trigger(models.TextChoices):
        COMMAND = "command"
        CONSOLE = "console"
        SCHEDULE = "schedule"  # Celery beat: enough new corrections
        DEMO = "demo"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PROMOTED = "promoted"
        REFUSED = "refused"  # the gate kept the active version
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=20, choices=ModelVersion.Kind.choices)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=200, blank=True, default="")  # "training 120/300 steps"
    progress = models.FloatField(default=0.0)  # 0..1
    detail = models.TextField(blank=True, default="")  # the error, or the gate's reason
    candidate = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    corrections_seen = models.PositiveIntegerField(default=0)  # the tenant's correction count when it started
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} retrain #{self.pk} ({self.status})"


class StoreConnection(models.Model):
    """A store's order system that the bot calls (chatbot.actions): its own webhook, Shopify or WooCommerce.

    `credentials` are encrypted (chatbot.actions.credentials) and read only by the connector that calls."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        SHOPIFY = "shopify"
        WOOCOMMERCE = "woocommerce"

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="store_connection")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    url = models.URLField(max_length=500, help_text="The webhook's address, or the shop's base address.")
    credentials = models.TextField(blank=True, default="", editable=False)  # encrypted JSON
    # Which action answers which intent, e.g. {"track_order": "order_status"}.
    intent_actions = models.JSONField(default=dict, blank=True)
    # What an order number looks like in this store (a regular expression), e.g. "NW-\\d{6}".
    order_pattern = models.CharField(max_length=200, default=r"#?\d{4,12}")
    timeout = models.FloatField(default=5.0, help_text="Seconds the order system has to answer.")
    is_active = models.BooleanField(default=True)
    # The circuit breaker: failed calls in a row, and until when calls are not even tried.
    failures_in_a_row = models.PositiveIntegerField(default=0)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant} via {self.kind}"


class ActionCall(models.Model):
    """One call of a store action: the audit trail managers filter in review and insights count."""

    class Outcome(models.TextChoices):
        OK = "ok"
        NEEDS = "needs"  # the store asked for more parameters
        NOT_MATCHED = "not_matched"  # not_found or forbidden: the same to the visitor
        FAILED = "failed"  # timeout, error status, bad answer, refused address, open circuit
        LIMITED = "limited"  # too many unmatched look-ups: not called

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="action_calls")
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="action_calls")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_calls")
    action = models.CharField(max_length=30)
    params = models.JSONField(default=dict, blank=True)  # masked
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    detail = models.CharField(max_length=200, blank=True, default="")  # "timeout", "status 502", "not_found"
    latency_ms = models.FloatField(null=True, blank=True)
    # Write actions: one key per confirmed request, so a retried answer does not act twice.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    result = models.JSONField(default=dict, blank=True)  # what an `ok` returned, to answer a retry with
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome}"


class DemoOrder(models.Model):
    """An order of the demo store's own small order system (chatbot.actions.demo_orders), which speaks the
    store actions webhook like a real store's would."""

    number = models.CharField(max_length=20, unique=True)
    email = models.EmailField()
    data = models.JSONField(default=dict)  # state, placed_at, carrier, tracking..., items, shipping_address
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.number

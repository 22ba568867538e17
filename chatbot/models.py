"""Data of the platform: tenants, visitors, conversations, messages, knowledge,
training examples, feedback and the model registry. Workflows live in services."""
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(24)


def new_visitor_token() -> str:
    return "v_" + secrets.token_urlsafe(24)


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
    # Generation settings: max_new_tokens, num_beams, no_repeat_ngram_size, temperature.
    generation = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin; a client without one is not a page on another site."""
        if not origin:
            return True
        allowed = [o.rstrip("/").lower() for o in self.allowed_origins or []]
        return "*" in allowed or origin.rstrip("/").lower() in allowed


class AgentMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        AGENT = "agent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class Visitor(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="visitors")
    token = models.CharField(max_length=64, unique=True, default=new_visitor_token)
    external_id = models.CharField(max_length=200, blank=True, default="", help_text="Verified id from the store.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "external_id"])]

    def __str__(self) -> str:
        return self.token


class Conversation(models.Model):
    class Status(models.TextChoices):
        BOT = "bot"
        HUMAN = "human"
        RESOLVED = "resolved"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="conversations")
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOT, db_index=True)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    handoff_reason = models.CharField(max_length=200, blank=True, default="")
    # Highest seq handed out; bumped under a row lock so seq grows by one.
    last_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "status", "-updated_at"])]

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
    # The visitor message a bot reply answers: one answer per visitor message.
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    created_at = models.DateTimeField(auto_now_add=True)
    # Labels of a visitor message (filled by the worker).
    intent = models.CharField(max_length=100, blank=True, default="")
    intent_confidence = models.FloatField(null=True, blank=True)
    sentiment = models.CharField(max_length=10, blank=True, default="")
    sentiment_confidence = models.FloatField(null=True, blank=True)
    # The "why" of a bot reply: grounding entries, model version, scores, hand-off reason.
    model_version = models.CharField(max_length=100, blank=True, default="")
    latency_ms = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    grounding = models.JSONField(default=list, blank=True)
    handoff_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["conversation_id", "seq"]
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
    rating = models.CharField(max_length=4, choices=Rating.choices)
    correction = models.TextField(blank=True, default="")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message"], condition=Q(source="visitor"), name="uniq_visitor_feedback_per_message"
            )
        ]


class KnowledgeEntry(models.Model):
    """A question/answer fact of a tenant; grounds the bot's replies."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="knowledge")
    question = models.TextField()
    answer = models.TextField()
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
    """A trained model on disk: one folder per version under MODELS_DIR."""

    class Kind(models.TextChoices):
        INTENT = "intent"
        SENTIMENT = "sentiment"
        RESPONDER = "responder"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="model_versions")
    version = models.CharField(max_length=100)
    path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "tenant"], condition=Q(is_active=True), name="one_active_model_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.version}"

"""The Django admin: staff's view of the data. Messages and who owns a conversation are written
only by the services (the console), so here they are read-only; non-superusers see only the
tenants they belong to."""
from django.contrib import admin

from chatbot.conversations import access
from chatbot.models import (
    AgentMembership, AssistSuggestion, CannedReply, Conversation, ConversationTransition, EvalExample, Feedback,
    KnowledgeEntry, Message, ModelVersion, SentimentExample, Tenant, TrainingExample, TrainingRun, Visitor,
)


# Filter by store listing only the stores of the rows shown: the plain filter lists every tenant's name.
BY_STORE = ("tenant", admin.RelatedOnlyFieldListFilter)


class TenantScoped(admin.ModelAdmin):
    """Rows of the tenants the staff user belongs to (all for superusers); `tenant_path` leads to the tenant."""

    tenant_path = "tenant"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if access.sees_all_tenants(request.user):
            return qs
        return qs.filter(**{f"{self.tenant_path}__in": access.tenant_ids_of(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tenant" and not access.sees_all_tenants(request.user):
            kwargs["queryset"] = Tenant.objects.filter(id__in=access.tenant_ids_of(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnly(TenantScoped):
    """Shown, never written here: the services own these rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = AgentMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(TenantScoped):
    tenant_path = "id"
    list_display = ["name", "slug", "public_key", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["public_key", "created_at"]
    inlines = [MembershipInline]


@admin.register(Visitor)
class VisitorAdmin(ReadOnly):
    list_display = ["id", "tenant", "email", "external_id", "created_at", "last_seen_at"]
    exclude = ["token"]
    list_filter = [BY_STORE]
    search_fields = ["email", "external_id"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["seq", "sender", "author", "private", "text", "intent", "intent_confidence", "sentiment",
              "model_version", "score", "handoff_code", "handoff_reason", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None):
        return False


class TransitionInline(admin.TabularInline):
    model = ConversationTransition
    extra = 0
    fields = ["created_at", "from_status", "to_status", "to_agent", "actor", "reason"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnly):
    list_display = ["id", "tenant", "visitor", "status", "assigned_agent", "handoff_code", "handoff_reason", "csat",
                    "updated_at"]
    list_filter = [BY_STORE, "status", "handoff_code"]
    inlines = [MessageInline, TransitionInline]


@admin.register(Message)
class MessageAdmin(ReadOnly):
    tenant_path = "conversation__tenant"
    list_display = ["id", "conversation", "seq", "sender", "text", "intent", "intent_confidence", "sentiment",
                    "model_version", "latency_ms", "created_at"]
    list_filter = ["sender", "sentiment", ("conversation__tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["text", "intent"]



@admin.register(Feedback)
class FeedbackAdmin(ReadOnly):
    tenant_path = "message__conversation__tenant"
    list_display = ["message", "source", "rating", "corrected_intent", "agent", "created_at"]
    list_filter = ["source", "rating"]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(TenantScoped):
    list_display = ["question", "category", "tenant", "is_active", "updated_at"]
    list_filter = [BY_STORE, "category", "is_active"]
    search_fields = ["question", "answer"]


@admin.register(TrainingExample)
class TrainingExampleAdmin(TenantScoped):
    list_display = ["text", "intent", "tenant", "source", "created_at"]
    list_filter = [BY_STORE, "source", "intent"]
    search_fields = ["text", "intent", "response"]


@admin.register(SentimentExample)
class SentimentExampleAdmin(admin.ModelAdmin):
    list_display = ["text", "label", "source", "created_at"]
    list_filter = ["label", "source"]
    search_fields = ["text"]


@admin.register(ModelVersion)
class ModelVersionAdmin(TenantScoped):
    list_display = ["kind", "tenant", "version", "status", "serving", "created_at", "promoted_at", "path"]
    list_filter = ["kind", BY_STORE, "status"]
    readonly_fields = ["created_at", "promoted_at"]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnly):
    """Retrains from request to the gate's verdict; the console's models page starts and follows them."""

    list_display = ["id", "kind", "tenant", "trigger", "status", "stage", "percent", "requested_by", "created_at",
                    "finished_at"]
    list_filter = ["kind", "status", "trigger", BY_STORE]
    search_fields = ["stage", "detail"]

    @admin.display(description="progress")
    def percent(self, run: TrainingRun) -> str:
        return f"{round((run.progress or 0) * 100)} %"


@admin.register(EvalExample)
class EvalExampleAdmin(ReadOnly):
    """The held-out sets the gate judges candidates on: written by the learning loop only."""

    list_display = ["text", "kind", "split", "label", "tenant", "created_at"]
    list_filter = ["kind", "split", BY_STORE]
    search_fields = ["text", "label"]


@admin.register(AgentMembership)
class AgentMembershipAdmin(TenantScoped):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", BY_STORE]


@admin.register(CannedReply)
class CannedReplyAdmin(TenantScoped):
    list_display = ["shortcut", "tenant", "text", "updated_at"]
    list_filter = [BY_STORE]
    search_fields = ["shortcut", "text"]


@admin.register(AssistSuggestion)
class AssistSuggestionAdmin(ReadOnly):
    tenant_path = "conversation__tenant"
    list_display = ["message", "outcome", "chosen", "agent", "source", "created_at"]
    list_filter = ["outcome", "source"]

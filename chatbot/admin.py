"""The Django admin: staff's view of the data. Messages and who owns a conversation are written
only by the services (the console), so here they are read-only; non-superusers see only the
tenants they belong to."""
from django import forms
from django.contrib import admin

from chatbot.conversations import access, hours
from chatbot.models import (
    ActionCall, AgentMembership, AssistSuggestion, CannedReply, Conversation, ConversationTransition, EvalExample,
    Feedback, KnowledgeEntry, Message, ModelVersion, SentimentExample, StoreConnection, Tenant, TrainingExample,
    TrainingRun, Visitor,
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


class TenantAdminForm(forms.ModelForm):
    """Business hours are checked as the console's Team page checks them (chatbot.conversations.hours): hours that
    do not parse would count as always open."""

    class Meta:
        model = Tenant
        fields = "__all__"

    def clean(self) -> dict:
        data = super().clean()
        for field, check in (("timezone", hours.timezone_clean), ("business_hours", hours.schedule_clean),
                             ("holidays", hours.holidays_clean)):
            if field in data:
                try:
                    data[field] = check(data[field])
                except hours.HoursInvalid as exc:
                    self.add_error(field, exc.detail)
        return data


@admin.register(Tenant)
class TenantAdmin(TenantScoped):
    """A store. Its team's assignment rule, business hours and first-response target are also on the console's Team
    page, with each member's capacity and languages (the inline here)."""

    form = TenantAdminForm
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


@admin.register(StoreConnection)
class StoreConnectionAdmin(TenantScoped):
    """A store's order system. Connected in the console's Order system page (or `connect_store`), which checks the
    address and the mapping and encrypts the credentials; here an operator can only switch a connection off (or
    delete it, as disconnecting does). The credentials are never a field, shown or not."""

    list_display = ["tenant", "kind", "url", "is_active", "failures_in_a_row", "circuit_open_until", "updated_at"]
    list_filter = ["kind", "is_active", BY_STORE]
    search_fields = ["tenant__name", "tenant__slug", "url"]
    fields = ["tenant", "kind", "url", "intent_actions", "order_pattern", "timeout", "is_active", "failures_in_a_row",
              "circuit_open_until", "created_at", "updated_at"]
    readonly_fields = [f for f in fields if f != "is_active"]
    exclude = ["credentials"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("credentials")

    def has_add_permission(self, request, obj=None):
        return False  # a connection without its credentials (which only the services seal) would only fail


@admin.register(ActionCall)
class ActionCallAdmin(ReadOnly):
    """The audit of store actions: every call, its masked parameters, outcome and latency. Written by
    chatbot.actions.services only."""

    list_display = ["created_at", "tenant", "action", "outcome", "detail", "latency_ms", "conversation"]
    list_filter = ["action", "outcome", BY_STORE]
    search_fields = ["detail"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "conversation"]
    fields = ["created_at", "tenant", "conversation", "message", "action", "params", "outcome", "detail",
              "latency_ms", "idempotency_key", "result"]
    readonly_fields = fields

from django.contrib import admin

from .models import (
    AgentMembership, Conversation, Feedback, KnowledgeEntry, Message, ModelVersion, SentimentExample, Tenant,
    TrainingExample, Visitor,
)


class MembershipInline(admin.TabularInline):
    model = AgentMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "public_key", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["public_key", "created_at"]
    inlines = [MembershipInline]


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    list_display = ["token", "tenant", "external_id", "created_at", "last_seen_at"]
    list_filter = ["tenant"]
    search_fields = ["token", "external_id"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["seq", "sender", "text", "intent", "intent_confidence", "sentiment", "model_version", "score",
              "handoff_reason", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["seq"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "visitor", "status", "assigned_agent", "handoff_reason", "updated_at"]
    list_filter = ["tenant", "status"]
    inlines = [MessageInline]
    raw_id_fields = ["visitor"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "seq", "sender", "text", "intent", "intent_confidence", "sentiment",
                    "model_version", "latency_ms", "created_at"]
    list_filter = ["sender", "sentiment", "conversation__tenant"]
    search_fields = ["text", "intent"]
    raw_id_fields = ["conversation", "reply_to"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "source", "rating", "agent", "created_at"]
    list_filter = ["source", "rating"]
    raw_id_fields = ["message"]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ["question", "category", "tenant", "is_active", "updated_at"]
    list_filter = ["tenant", "category", "is_active"]
    search_fields = ["question", "answer"]


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = ["text", "intent", "tenant", "source", "created_at"]
    list_filter = ["tenant", "source", "intent"]
    search_fields = ["text", "intent", "response"]


@admin.register(SentimentExample)
class SentimentExampleAdmin(admin.ModelAdmin):
    list_display = ["text", "label", "source", "created_at"]
    list_filter = ["label", "source"]
    search_fields = ["text"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["kind", "tenant", "version", "is_active", "created_at", "path"]
    list_filter = ["kind", "tenant", "is_active"]
    readonly_fields = ["created_at"]


admin.site.register(AgentMembership)

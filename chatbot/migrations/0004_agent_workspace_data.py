"""Data for the agent workspace, in its own transaction (PostgreSQL refuses ALTER TABLE after updates in one)."""
from django.db import migrations

def forward_data(apps, schema_editor):
    """Hand-offs nobody took become `waiting`; owner/admin seats become managers; a visitor keeps
    only her newest open conversation (the new constraint allows one), the older ones resolved."""
    Conversation = apps.get_model("chatbot", "Conversation")
    AgentMembership = apps.get_model("chatbot", "AgentMembership")
    Message = apps.get_model("chatbot", "Message")
    Conversation.objects.filter(status="human", assigned_agent__isnull=True).update(status="waiting")
    AgentMembership.objects.filter(role__in=["owner", "admin"]).update(role="manager")
    seen = set()
    for conv in Conversation.objects.exclude(status="resolved").order_by("visitor_id", "-created_at", "-id"):
        if conv.visitor_id in seen:
            Conversation.objects.filter(pk=conv.pk).update(status="resolved", resolved_at=conv.updated_at)
        seen.add(conv.visitor_id)
    for conv in Conversation.objects.filter(last_message_at__isnull=True).iterator():
        last = Message.objects.filter(conversation_id=conv.pk).order_by("-seq").first()
        if last is not None:
            Conversation.objects.filter(pk=conv.pk).update(
                last_message_text=last.text[:200], last_message_sender=last.sender, last_message_at=last.created_at
            )


class Migration(migrations.Migration):
    dependencies = [("chatbot", "0003_agent_workspace")]

    operations = [migrations.RunPython(forward_data, migrations.RunPython.noop)]

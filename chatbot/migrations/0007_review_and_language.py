"""The managers' review: the language of a conversation, the sentiment a reviewer corrects, and
full-text search over message text (a GIN index on PostgreSQL; SQLite searches with LIKE)."""
from django.db import migrations, models

# The expression chatbot.review.queries searches (SearchVector("text", config="simple")), so the planner uses it.
SEARCH_INDEX = (
    "CREATE INDEX IF NOT EXISTS message_text_search ON chatbot_message "
    "USING gin (to_tsvector('simple'::regconfig, COALESCE(text, '')))"
)


def search_index_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SEARCH_INDEX)


def search_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_text_search")


class Migration(migrations.Migration):

    dependencies = [
        ("chatbot", "0006_managers_and_delivery"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="language",
            field=models.CharField(blank=True, default="", max_length=10),
        ),
        migrations.AddField(
            model_name="feedback",
            name="corrected_sentiment",
            field=models.CharField(blank=True, default="", max_length=10),
        ),
        migrations.AddField(
            model_name="feedback",
            name="original_sentiment",
            field=models.CharField(blank=True, default="", max_length=10),
        ),
        migrations.RunPython(search_index_create, search_index_drop, elidable=False),
    ]

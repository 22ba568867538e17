"""Hand-off reasons get a code (chatbot.models.HandoffReason) beside their free text, which stays as the detail.

The data step reads the free text written before the codes. Its rules are frozen here (not imported from
live code), so editing the live reasons later never changes what this migration did.
"""
import re

from django.db import migrations, models

CHOICES = [
    ("asked_for_person", "Asked for a person"), ("negative_sentiment", "Negative sentiment"),
    ("out_of_scope", "Out of scope"), ("low_confidence", "Low intent confidence"),
    ("low_responder_score", "Low responder score"), ("repeated_fallback", "Repeated fallbacks"),
    ("language", "Language"), ("bot_unavailable", "The bot was unavailable"), ("action_failed", "An action failed"),
    ("fallback", "Fallback reply"), ("other", "Other"),
]
# The texts inference.policy and chatbot.conversations.delivery wrote, first match wins.
RULES = (
    ("language", re.compile(r"^language\b")),
    ("asked_for_person", re.compile(r"asked for (a |an )?(person|human|agent)")),
    ("negative_sentiment", re.compile(r"^negative sentiment")),
    ("out_of_scope", re.compile(r"out[- ]of[- ]scope")),
    ("low_confidence", re.compile(r"^low (intent )?confidence")),
    ("low_responder_score", re.compile(r"^low responder score")),
    ("repeated_fallback", re.compile(r"fallback")),
    ("bot_unavailable", re.compile(r"bot unavailable|the bot failed")),
    ("action_failed", re.compile(r"action failed")),
)


def handoff_code_of(text: str, sender: str = "") -> str:
    """The code of a reason written as free text: "" for none, `fallback` for a bot reply's (only fallback
    replies stored one), `other` for a text no rule knows; `sender` is a message's, "" for a conversation."""
    text = (text or "").strip().lower()
    if not text:
        return ""
    if sender == "bot":
        return "fallback"
    return next((code for code, rule in RULES if rule.search(text)), "other")


def codes_from_text(apps, schema_editor):
    """One UPDATE per distinct text (a few hundred at most: the numbers in them are rounded)."""
    Conversation = apps.get_model("chatbot", "Conversation")
    Message = apps.get_model("chatbot", "Message")
    texts = Conversation.objects.exclude(handoff_reason="").order_by().values_list("handoff_reason", flat=True)
    for text in texts.distinct():
        Conversation.objects.filter(handoff_reason=text, handoff_code="").update(handoff_code=handoff_code_of(text))
    Message.objects.filter(sender="bot", handoff_code="").exclude(handoff_reason="").update(handoff_code="fallback")
    notices = Message.objects.exclude(sender="bot").exclude(handoff_reason="")
    for text in notices.order_by().values_list("handoff_reason", flat=True).distinct():
        notices.filter(handoff_reason=text, handoff_code="").update(handoff_code=handoff_code_of(text, "system"))


class Migration(migrations.Migration):

    dependencies = [
        ("chatbot", "0008_learning_loop"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="handoff_code",
            field=models.CharField(blank=True, choices=CHOICES, default="", max_length=20),
        ),
        migrations.AddField(
            model_name="message",
            name="handoff_code",
            field=models.CharField(blank=True, choices=CHOICES, default="", max_length=20),
        ),
        migrations.RunPython(codes_from_text, migrations.RunPython.noop),
    ]

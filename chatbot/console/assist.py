"""Agent assist: reply suggestions for the last visitor message, and what agents did with them.

Workers write the suggestions (inference.assist computes them, with the models); the console
reads them here and an agent's reply settles them as sent, edited or ignored.
"""
from django.db import transaction

from chatbot import events
from chatbot.models import AssistSuggestion, Conversation, Message

MAX_SUGGESTIONS = 3


def suggestions_store(message_id: int, texts: list[str], source: str) -> AssistSuggestion | None:
    """Keep up to three suggestions for a visitor message, once; agents hear of them on commit."""
    texts = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
    texts = list(dict.fromkeys(texts))[:MAX_SUGGESTIONS]
    message = Message.objects.select_related("conversation").filter(pk=message_id, sender=Message.Sender.VISITOR).first()
    if message is None or not texts:
        return None
    with transaction.atomic():
        suggestion, created = AssistSuggestion.objects.get_or_create(
            message=message, defaults={"conversation": message.conversation, "texts": texts, "source": source[:50]}
        )
        if created:
            events.emit({
                "type": events.SUGGESTIONS_READY,
                "tenant": message.conversation.tenant_id,
                "conversation": message.conversation_id,
                "message": message.id,
                "suggestions": suggestion.texts,
            })
    return suggestion


def suggestions_latest(conversation: Conversation) -> list[str]:
    """The suggestions for the conversation's newest visitor message, if they are still open."""
    last = (Message.objects.filter(conversation=conversation, sender=Message.Sender.VISITOR)
            .order_by("-seq").values_list("id", flat=True).first())
    if last is None:
        return []
    found = AssistSuggestion.objects.filter(message_id=last, outcome=AssistSuggestion.Outcome.PENDING).first()
    return list(found.texts) if found else []


def suggestion_settle(conversation_id: int, reply: Message, chosen: object) -> AssistSuggestion | None:
    """Record whether the agent's reply used a suggestion as is, edited one, or ignored them."""
    found = (AssistSuggestion.objects.select_for_update()
             .filter(conversation_id=conversation_id, outcome=AssistSuggestion.Outcome.PENDING)
             .order_by("-message__seq").first())
    if found is None:
        return None
    if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(found.texts):
        same = " ".join(reply.text.split()) == " ".join(found.texts[chosen].split())
        found.outcome = AssistSuggestion.Outcome.SENT if same else AssistSuggestion.Outcome.EDITED
        found.chosen = chosen
    else:
        found.outcome = AssistSuggestion.Outcome.IGNORED
    found.reply = reply
    found.agent = reply.author
    found.save()
    return found

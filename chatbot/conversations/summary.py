"""The hand-off summary agents read at the top of a handed-off conversation: what the visitor wants, the
details she gave, how her mood went, what the bot answered and why it handed off.

Computed from what is stored (the labels of her messages, the why of the bot's replies, the hand-off's
reason), with no model of its own: it reads the transcript the console loads anyway.
"""
from collections import Counter

from nlu.pii import pii_find

from chatbot.models import Conversation, HandoffReason, Message

MOOD_SCORE = {"negative": -1, "neutral": 0, "positive": 1}


def _mask(kind: str, value: str) -> str:
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    return value[:2] + "•••" + value[-2:] if len(value) > 6 else "•••"


def _details(texts: list[str], masked: set[str]) -> list[dict]:
    """The personal details in her messages (nlu.pii's kinds), once each, masked where the store says so."""
    seen, details = set(), []
    for text in texts:
        for found in pii_find(text)[1]:
            key = (found.kind, found.value.lower())
            if found.kind == "number" or key in seen:
                continue
            seen.add(key)
            details.append({"kind": found.kind,
                            "value": _mask(found.kind, found.value) if found.kind in masked else found.value})
    return details[:12]


def _mood(sentiments: list[str]) -> dict:
    """Her turns' sentiment in order, and whether it got worse, better or stayed (first half against second)."""
    scored = [MOOD_SCORE[s] for s in sentiments if s in MOOD_SCORE]
    trend = "unknown"
    if scored:
        half = max(1, len(scored) // 2)
        before, after = sum(scored[:half]) / half, sum(scored[-half:]) / half
        trend = "worse" if after < before - 0.25 else "better" if after > before + 0.25 else "steady"
    return {"turns": [s for s in sentiments if s], "trend": trend, "last": next(
        (s for s in reversed(sentiments) if s), "")}


def handoff_summary(conversation: Conversation, messages: list[Message]) -> dict | None:
    """The summary of a conversation the bot handed off (None for one it never did), from its transcript."""
    if not conversation.handoff_code:
        return None
    visitor = [m for m in messages if m.sender == Message.Sender.VISITOR]
    bot = [m for m in messages if m.sender == Message.Sender.BOT]
    intents = Counter(m.intent for m in visitor if m.intent and m.intent != "out_of_scope")
    handed = next((m for m in reversed(messages) if m.sender == Message.Sender.SYSTEM and m.handoff_code), None)
    asked = handed.reply_to if handed is not None and handed.reply_to_id else (visitor[-1] if visitor else None)
    actions = [
        {"action": g["action"], "outcome": g.get("outcome", ""), "detail": g.get("detail", ""),
         "state": (g.get("result") or {}).get("state", "")}
        for m in bot for g in (m.grounding or []) if isinstance(g, dict) and g.get("action")
    ]
    return {
        "wants": {"intent": asked.intent if asked is not None else "",
                  "intents": [name for name, _ in intents.most_common(3)],
                  "message": asked.text[:300] if asked is not None else ""},
        "details": _details([m.text for m in visitor], set(conversation.tenant.masked_details or [])),
        "mood": _mood([m.sentiment for m in visitor]),
        "bot": {"replies": len(bot),
                "fallbacks": sum(1 for m in bot if m.handoff_code == HandoffReason.FALLBACK),
                "last": bot[-1].text[:300] if bot else "",
                "actions": actions[-5:]},
        "handoff": {"code": conversation.handoff_code, "label": HandoffReason(conversation.handoff_code).label
                    if conversation.handoff_code in HandoffReason.values else conversation.handoff_code,
                    "reason": conversation.handoff_reason},
        "language": conversation.language,
    }

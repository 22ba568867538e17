"""Agent assist: up to three replies an agent may send to a visitor's message, best first.

With a trained responder the suggestions are its replies: the one the bot would write (grounded
in all the retrieved entries) and one grounded in each of the first entries alone. Without one
(or when it has nothing usable, or fails) they are the knowledge base's answers and the intents'
example replies. A suggestion may be a little below the bar at which the bot would
send it itself (`SLACK`): an agent reads it first.
"""
import logging
from dataclasses import dataclass

import numpy as np

from chatbot.console import assist

from chatbot.conversations import selectors, services
from chatbot.models import AssistSuggestion, Conversation, Message
from inference.labelling import message_labels

from inference.answer import HISTORY_TURNS
from inference.intent_replies import intent_reply_index
from inference.language import message_language
from inference.responder_services import responder_active
from inference.retrieval import knowledge_search
from nlu import OUT_OF_SCOPE

log = logging.getLogger(__name__)

MAX_SUGGESTIONS = assist.MAX_SUGGESTIONS
SLACK = 0.1  # how far below the tenant's own threshold a suggestion may score
SOURCE_KNOWLEDGE = "knowledge"  # knowledge entries and the intents' example replies
HUMAN_STATUSES = (Conversation.Status.WAITING, Conversation.Status.HUMAN)


@dataclass
class Candidate:
    text: str
    margin: float  # score above the threshold at which the bot would send it itself


def suggest_replies(conversation_id: int, message_id: int) -> list[str]:
    """Compute and store the suggestions for a visitor message, once; returns the stored ones.

    Nothing is computed for a message that has suggestions already, that a newer visitor message
    has superseded, or whose conversation is back with the bot.
    """
    message = (
        Message.objects.select_related("conversation__tenant")
        .filter(pk=message_id, conversation_id=conversation_id, sender=Message.Sender.VISITOR)
        .first()
    )
    if message is None:
        return []
    stored = AssistSuggestion.objects.filter(message=message).values_list("texts", flat=True).first()
    if stored is not None:
        return list(stored)
    if message.conversation.status not in HUMAN_STATUSES:
        return []
    if Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.VISITOR,
                              seq__gt=message.seq).exists():
        return []
    if not message.intent and not message.sentiment:
        _label(message)
    texts, source = suggestion_texts(message)
    suggestion = assist.suggestions_store(message.id, texts, source)
    return list(suggestion.texts) if suggestion else []


def suggestion_texts(message: Message) -> tuple[list[str], str]:
    """The suggestions for `message` (best first, distinct, at most three) and where they came from."""
    tenant = message.conversation.tenant
    hits = knowledge_search(tenant.id, message.text, k=MAX_SUGGESTIONS)
    intent = message.intent
    try:
        found = responder_active(tenant.id)
        if found is not None:
            responder, version = found
            texts = _best(_responder_candidates(tenant, message, intent, hits, responder))
            if texts:
                return texts, f"responder:{version.version}"
    except Exception:  # noqa: BLE001 - a broken responder must not leave agents without suggestions
        log.exception("the responder of tenant %s failed; suggesting from the knowledge base", tenant.id)
    candidates = [Candidate(h.answer, h.score - tenant.min_retrieval_score) for h in hits]
    candidates += _example_candidates(tenant, message.text, intent)
    return _best(candidates), SOURCE_KNOWLEDGE


def _best(candidates: list[Candidate]) -> list[str]:
    """Distinct texts (ignoring case and spacing) of the candidates close enough, best first."""
    seen, texts = set(), []
    for candidate in sorted(candidates, key=lambda c: -c.margin):
        key = " ".join(candidate.text.split()).casefold()
        if candidate.margin < -SLACK or not key or key in seen:
            continue
        seen.add(key)
        texts.append(candidate.text.strip())
    return texts[:MAX_SUGGESTIONS]


def _label(message: Message) -> None:
    """Label a message that arrived while people had the conversation (the bot labels only what it
    answers), so agents see its intent and sentiment and a later negative streak counts it."""
    labels = message_labels(message.conversation.tenant_id, message.text)
    services.message_labels_store(message.id, labels,
                                  language=message_language(message.conversation.tenant, message.text))
    message.intent, message.sentiment = labels.intent, labels.sentiment


def _example_candidates(tenant, text: str, intent: str) -> list[Candidate]:
    """The example replies of the message's intent (of every intent when it is unknown), by how close
    the message is to their example."""
    index = intent_reply_index(tenant.id)
    known = intent not in ("", OUT_OF_SCOPE)
    rows = [i for i, pair in enumerate(index.pairs) if not known or pair[1] == intent]
    if not rows:
        return []
    scores = index.vectors[rows] @ index.encoder.query(text)
    best = np.argsort(-scores)[: MAX_SUGGESTIONS * 2]  # room for duplicates of the same reply
    return [Candidate(index.pairs[rows[i]][3], float(scores[i]) - tenant.min_intent_reply_score) for i in best]


def _responder_candidates(tenant, message: Message, intent: str, hits: list, responder) -> list[Candidate]:
    """The responder's reply as the bot would write it (all hits), and grounded in each of the first hits alone."""
    turns = selectors.conversation_recent_turns(message.conversation_id, message.seq, HISTORY_TURNS)
    history = [(m.sender, m.text) for m in turns]
    knowledge = [h.answer for h in hits]
    requests = [(history, intent, knowledge)]
    requests += [(history, intent, [answer]) for answer in knowledge[:MAX_SUGGESTIONS - 1] if len(knowledge) > 1]
    replies = responder.reply_batch(requests, tenant.generation)
    return [Candidate(r.text, r.score - tenant.min_responder_score) for r in replies]

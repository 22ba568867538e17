"""The answer pipeline a worker runs for one visitor message: label, decide, reply, publish."""
import logging
import time
from dataclasses import replace
from typing import NamedTuple

from django.conf import settings
from django.db import close_old_connections

from chatbot.actions import dialogue
from chatbot.content import content_language
from chatbot.conversations import delivery, ownership, selectors, services
from chatbot.errors import TRANSIENT_ERRORS
from chatbot.models import Conversation, HandoffReason, Message, ModelVersion
from inference.labelling import message_labels

from inference import corrections, policy
from inference.intent_replies import VERSION as INTENT_REPLY_VERSION
from inference.intent_replies import IntentReply, intent_reply, training_replies
from inference.language import message_language
from inference.responder.generate import STORED
from inference.responder_gate import reply_grounded, serves_visitors
from inference.responder_services import responder_lease
from inference.retrieval import knowledge_search
from nlu import OUT_OF_SCOPE

log = logging.getLogger(__name__)

RETRIEVAL_VERSION = "retrieval-minilm"
COMPLAINT_VERSION = "complaint-rule"  # the reply is the tenant's complaint text (policy.strong_complaint)
SENTIMENT_WINDOW = 5
HISTORY_TURNS = 8


def answer_message(conversation_id: int, message_id: int, *, take_over: bool = False) -> str:
    """Answer one visitor message; safe to run twice (the second run finds it answered).

    Returns what happened: "answered", "fallback", "handed_off" or why it was skipped. The message's
    answer state (chatbot.conversations.delivery) says who answers it: a transient error queues it again and
    propagates (the task retries); any other error fails it for good (the visitor is told, people get
    the conversation). `take_over`: this run continues an attempt that is over (a retry, a redelivery).
    """
    close_old_connections()
    message = (
        Message.objects.select_related("conversation__tenant")
        .filter(pk=message_id, conversation_id=conversation_id, sender=Message.Sender.VISITOR)
        .first()
    )
    if message is None:
        return "skipped: no such visitor message"
    conversation = message.conversation
    tenant = conversation.tenant
    replied = delivery.answer_outcome(message)
    if replied or message.answer_state in delivery.DONE:
        if replied and replied != message.answer_state:  # a run that died after replying
            delivery.answer_done(message.id, replied)
        return "skipped: already answered"
    if message.answer_state == Message.AnswerState.FAILED:
        return "skipped: failed for good"
    if conversation.status != Conversation.Status.BOT:
        if message.answer_state:
            delivery.answer_done(message.id, Message.AnswerState.HANDED_OFF)
        return "skipped: conversation is with humans"
    if not delivery.answer_start(message.id, take_over=take_over):
        return "skipped: being answered"

    services.typing_set(conversation_id, "bot", True, tenant.id)
    try:
        with delivery.heartbeat(message.id):
            if settings.ANSWER_DEBUG_DELAY and message.answer_attempts == 0:  # tests only: see settings
                time.sleep(settings.ANSWER_DEBUG_DELAY)
            outcome = _answer(message, tenant)
    except TRANSIENT_ERRORS:
        _release(message.id)
        raise
    except Exception as exc:  # noqa: BLE001 - a broken model must not leave the visitor waiting
        log.exception("answering message %s failed; handing the conversation to humans", message.id)
        delivery.answer_fail(message.id, type(exc).__name__)
        return "handed_off: bot failed"
    finally:
        services.typing_set(conversation_id, "bot", False, tenant.id)
    # What was stored says it: a bot reply, a hand-off notice, or nothing (people took over meanwhile).
    delivery.answer_done(message.id, delivery.answer_outcome(message) or Message.AnswerState.HANDED_OFF)
    return outcome


def _release(message_id: int) -> None:
    """Queue the message again for the task's retry; with the database away, the retry takes it over."""
    try:
        delivery.answer_release(message_id)
    except TRANSIENT_ERRORS:
        pass


def _answer(message: Message, tenant) -> str:
    """Label, retrieve, decide, then reply, fall back or hand off.

    An agent's correction of this question (or a close paraphrase) comes first: its intent replaces the
    classifier's, and its reply answers before the knowledge base, the responder and the intents' replies.
    """
    conversation_id = message.conversation_id
    started = time.perf_counter()
    labels = message_labels(tenant.id, message.text)
    remembered = corrections.correction_match(tenant.id, message.text)
    if remembered is not None and remembered.intent:
        labels = replace(labels, intent=remembered.intent, intent_confidence=round(remembered.score, 4),
                         intent_version=corrections.VERSION)
    language = message_language(tenant, message.text)
    # An agent's reply is in the language of the message she corrected: it answers messages in that one.
    corrected = remembered if remembered is not None and remembered.reply and corrections.reply_fits(
        remembered.correction, language) else None
    services.message_labels_store(message.id, labels, language=language)
    foreign = policy.unserved_language(tenant, language)  # goes to people: no reply to compute
    if not policy.asks_for_human(message.text):
        # An order the store's system can look up or change: its answer is the action's.
        step = dialogue.action_step(tenant, message, labels.intent, labels.intent_confidence, language,
                                    unserved=foreign, wants_person=labels.intent == policy.HUMAN_INTENT)
        if step is not None:
            return _action_reply(message, step, started)
    # An unclear message ("ok") goes on in the conversation's language (loaded with the message; an unclear
    # message leaves it as its latest clear message set it).
    reply_language = content_language(language, tenant.main_language, tenant.languages, message.conversation.language)
    hits = knowledge_search(tenant.id, message.text, k=3, languages=tenant.languages)
    earlier = list(
        Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.VISITOR, seq__lt=message.seq)
        .order_by("-seq").values_list("sentiment", flat=True)[:SENTIMENT_WINDOW]
    )[::-1]
    # A strong complaint is answered by the rule whatever the models would write: skip them.
    complaint = policy.strong_complaint(tenant, labels, policy.negative_streak(labels.sentiment, earlier))
    retrieval_score = hits[0].score if hits else None
    # A responder writes the language it learnt, the store's main one; a knowledge entry close enough to
    # answer is the store's own word on the question, so it answers before the responder.
    generated = None if (complaint or foreign or corrected or reply_language not in ("", tenant.main_language)
                         or policy.knowledge_answers(tenant, retrieval_score)) else _generate(
        tenant, message, labels.intent, hits)
    own = None if generated or complaint or foreign or corrected else _intent_reply(
        tenant, message.text, labels.intent, reply_language)
    decision = policy.decide(
        tenant, message.text, labels, retrieval_score, earlier,
        responder_score=_served_score(tenant, generated[0]) if generated else None,
        intent_reply_score=own.score if own else None,
        fallbacks_before=fallbacks_in_a_row(message, tenant.fallbacks_to_handoff - 1),
        language=language,
    )
    decision = corrections.decision_with(decision, corrected)
    reply = None if decision.hands_off else _reply(tenant, decision, labels, hits, corrected, generated, own,
                                                   reply_language)
    if reply is not None and reply.text is None:  # the store wrote no answer in the visitor's language
        if not language:  # only the conversation's language: an unclear message is no reason to hand off
            reply = reply._replace(text=reply.main_text)
        elif tenant.untranslated == tenant.Untranslated.HAND_OFF:
            decision = policy.Decision("hand_off", f"no answer written in {reply_language}",
                                       {"language": reply_language}, HandoffReason.UNTRANSLATED)
        else:
            reply = reply._replace(text=f"{tenant.text('untranslated_note', reply_language)}\n\n{reply.main_text}")
    if decision.hands_off:
        ownership.conversation_hand_off(conversation_id, decision.reason, reply_to_id=message.id, code=decision.code)
        return "handed_off"
    text, model_version, score, grounding, _ = reply
    services.bot_reply_store(
        message.id, text,
        grounding=grounding,
        model_version=model_version,
        score=score,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        # Set on fallback replies only (code `fallback`): fallbacks_in_a_row counts them by it.
        handoff_code=decision.code if decision.action == "fallback" else "",
        handoff_reason=decision.reason if decision.action == "fallback" else "",
    )
    return "answered" if decision.action == "answer" else "fallback"


def _action_reply(message: Message, step: dialogue.Step, started: float) -> str:
    """Store the bot's turn of a store action (its why: what was looked up); hand off when the step says so."""
    services.bot_reply_store(
        message.id, step.text, grounding=[step.why] if step.why else [], model_version=f"action:{step.action}",
        latency_ms=round((time.perf_counter() - started) * 1000, 1), choices=step.choices,
    )
    if step.handoff:
        code, reason = step.handoff
        ownership.conversation_hand_off(message.conversation_id, reason, reply_to_id=message.id, code=code)
        return "handed_off"
    return "answered"


class Reply(NamedTuple):
    text: str | None  # None: the answer exists only in languages other than the visitor's
    model_version: str
    score: float | None
    grounding: list
    main_text: str  # the answer as the store wrote it in its main language


def _reply(tenant, decision: policy.Decision, labels, hits: list, corrected, generated, own,
           language: str) -> Reply:
    """The decided answer, in `language` where the store wrote one (else `Tenant.untranslated` decides)."""
    main = tenant.main_language
    listed = bool(tenant.languages)
    grounding = [h.as_grounding() for h in hits]
    source = decision.details.get("source")
    if source == "complaint":
        text, model_version, score, grounding = _complaint_reply(tenant, labels, decision, hits, language)
        return Reply(text, model_version, score, grounding, text)
    if source == "correction":
        grounding.insert(0, corrected.as_grounding())
        return Reply(corrected.reply, corrections.VERSION, round(corrected.score, 4), grounding, corrected.reply)
    if generated:
        reply, version = generated
        if reply.agreement is not None:  # which candidate served, and how much the others agreed with it
            grounding.insert(0, {"rule": f"responder: {reply.source} reply by consensus", "score": reply.agreement})
        return Reply(reply.text, f"responder:{version.version}", reply.score, grounding, reply.text)
    if source == "intent_reply":
        grounding.insert(0, own.as_grounding())
        same = not listed or not language or (own.language or main) == language
        return Reply(own.reply if same else None, INTENT_REPLY_VERSION, own.score, grounding, own.reply)
    score = hits[0].score if hits else None
    if decision.action != "answer":
        return Reply(tenant.text("fallback_text", language), RETRIEVAL_VERSION, score, grounding, tenant.fallback_text)
    return Reply(_knowledge_answer(tenant, hits[0], language), RETRIEVAL_VERSION, score, grounding, hits[0].answer)


def _knowledge_answer(tenant, hit, language: str) -> str | None:
    """The entry's answer in `language`; with the language unclear, in the version the message matched."""
    if not tenant.languages:
        return hit.answer
    return hit.answer_in(language or hit.matched or tenant.main_language, tenant.main_language)


def fallbacks_in_a_row(message: Message, limit: int) -> int:
    """The bot's fallback replies in a row just before `message`, counted up to `limit`.

    A fallback reply is a bot reply with the `handoff_code` fallback (no other bot reply stores one). Any other
    bot reply, an agent's message or a notice (hand-off, hand-back, resolved) ends the run; the
    visitor's own turns do not.
    """
    if limit <= 0:
        return 0
    recent = (
        Message.objects.filter(conversation_id=message.conversation_id, seq__lt=message.seq, private=False)
        .exclude(sender=Message.Sender.VISITOR)
        .order_by("-seq").values_list("sender", "handoff_code")[:limit]
    )
    count = 0
    for sender, code in recent:
        if sender != Message.Sender.BOT or code != HandoffReason.FALLBACK:
            break
        count += 1
    return count


def _complaint_reply(tenant, labels, decision: policy.Decision, hits: list,
                     language: str) -> tuple[str, str, float | None, list]:
    """The tenant's apology and offer of a person; a negative streak about a question also gets the knowledge
    answer when one is close enough. A complaint itself gets no FAQ entry: one that matches its words
    ("my package is late" -> shipping times) reads as if nobody listened."""
    rule = {"rule": "complaint", "reason": decision.reason, "intent": labels.intent,
            "sentiment_confidence": round(labels.sentiment_confidence, 4), "negative_turns": decision.details["streak"]}
    answer = _knowledge_answer(tenant, hits[0], language) if hits else None
    if labels.intent != policy.COMPLAINT_INTENT and answer and policy.knowledge_answers(tenant, hits[0].score):
        text = f"{tenant.text('complaint_text', language)}\n\n{answer}"
        return text, COMPLAINT_VERSION, hits[0].score, [rule, *(h.as_grounding() for h in hits)]
    return tenant.text("complaint_text", language), COMPLAINT_VERSION, None, [rule]


def _intent_reply(tenant, text: str, intent: str, language: str) -> IntentReply | None:
    """The closest example reply of the predicted intent (the policy weighs it against the knowledge entry):
    one written in `language` if the store wrote any, else one in another language (see _reply)."""
    if intent in ("", OUT_OF_SCOPE):
        return None
    listed = tenant.languages
    if not language:  # unclear ("hola", "merci"): the closest reply in any language
        return intent_reply(tenant.id, intent, text, languages=listed)
    written = {"", language} if language == tenant.main_language else {language}
    return (intent_reply(tenant.id, intent, text, written, languages=listed)
            or intent_reply(tenant.id, intent, text, languages=listed))


def _served_score(tenant, reply) -> float:
    """The responder's confidence as the policy weighs it (a low one hands off): its generated text's token
    probability. A stored reply that won the consensus is the store's own words to messages like this one;
    the model's doubt about its own text says nothing against it, so it never hands off for that."""
    if reply.source == STORED:
        return max(reply.score, tenant.min_responder_score)
    return reply.score


def _generate(tenant, message: Message, intent: str, hits: list):
    """The tenant's responder's reply to `message`, grounded in `hits`, and its version; None when there is
    none for visitors: no responder, one that serves agent assist only (the gate found it no better than
    retrieval, for the store or for this intent), or a reply that writes a value (number, e-mail, link,
    order number) found neither in the message, nor in the retrieved entries, nor in the tenant's training
    replies."""
    with responder_lease(tenant.id) as found:
        if found is None:
            return None
        responder, version = found
        if version.serving == ModelVersion.Serving.ASSIST or not serves_visitors(
                (version.evaluations or {}).get("serving"), intent):
            return None
        turns = selectors.conversation_recent_turns(message.conversation_id, message.seq, HISTORY_TURNS)
        history = [(m.sender, m.text) for m in turns]
        knowledge = [h.answer for h in hits]
        reply = responder.reply(history, intent, knowledge, settings=tenant.generation)
    if not reply_grounded(reply.text, [message.text, *knowledge, training_replies(tenant.id)]):
        log.info("responder %s wrote a value from nowhere for message %s; answering by retrieval",
                 version.version, message.id)
        return None
    return reply, version

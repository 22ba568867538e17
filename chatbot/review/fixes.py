"""What to fix first: concrete suggestions for a store's manager, each with its evidence (counts and the
visitors' own messages, linked to their conversations), ranked by how many visitor messages each touches.

- questions the bot could not answer, grouped by meaning: the groups need sentence embeddings, which only
  the worker side computes (inference.clusters); it stores its last result as a JSON file under MODELS_DIR,
  and this module reads it and asks for a new one (the `clusters_requested` event, which the workers answer);
- intents most often met with negative sentiment, a thumbs down or a hand-off (SQL);
- knowledge entries whose answers were rated down (SQL, over the bot replies' grounding);
- the recurring words of unhappy visitors: n-grams of negative messages and of messages right after a thumbs
  down, weighed against everybody else's messages.
"""
import json
import math
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from chatbot import events
from chatbot.review.insights import Period, conversation_url, page_reads, review_url, rows_over, visitor_messages_in
from chatbot.models import Feedback, HandoffReason, KnowledgeEntry, Message
from nlu import OUT_OF_SCOPE


SENDER = Message.Sender
# The newest unanswered questions the clustering reads (agglomerative clustering is quadratic in memory).
CLUSTER_LIMIT = 2000
EXAMPLES = 3
# Intents whose hand-offs are the visitor's wish or the clusters' business, not the intent's fault.
NOT_AN_INTENTS_FAULT = ("human_agent", OUT_OF_SCOPE)
# Hand-offs of a question the bot did not know (inference.policy's codes); fallback replies count too.
UNKNOWN_REASONS = (HandoffReason.OUT_OF_SCOPE, HandoffReason.LOW_CONFIDENCE, HandoffReason.LOW_RESPONDER_SCORE,
                   HandoffReason.REPEATED_FALLBACK)
TERMS_LIMIT = 5
TERMS_SAMPLE = 3000
NEGATIONS = frozenset({"no", "not", "never", "nobody", "nothing", "none", "cannot", "nowhere"})
# Function words and greetings: a phrase neither begins nor ends with one. Shorter than the usual lists on
# purpose: "still", "again", "yet" and "never" carry a complaint ("still waiting", "never arrived").
STOP_WORDS = frozenset("""
a an the and or but if so of to in on at by for from with about as into onto over than then that this these those
i i'm im me my mine we us our you your yours he him his she her it it's its they them their there here
is am are was were be been being do does did done have has had will would can could should shall may might must
what which who whom whose when where why how just also very too all any some up out off
please hi hello hey thanks thank ok okay yes
""".split())


def unanswered_filter() -> Exists:
    """A visitor message answered by a fallback reply, or handed to people because the bot did not know."""
    return Exists(Message.objects.filter(reply_to=OuterRef("pk")).filter(
        Q(sender=SENDER.BOT, handoff_code=HandoffReason.FALLBACK)
        | Q(sender=SENDER.SYSTEM, handoff_code__in=UNKNOWN_REASONS)))


def unanswered_questions(tenant_id: int, period: Period, limit: int = CLUSTER_LIMIT) -> list[dict]:
    """The period's newest visitor messages the bot could not answer: id, conversation id, text, time."""
    rows = (visitor_messages_in(tenant_id, period).filter(unanswered_filter())
            .order_by("-created_at", "-id").values("id", "conversation_id", "text", "created_at")[:limit])
    return list(rows)


# --- the stored clusters ------------------------------------------------------------------------


def clusters_path(tenant_id: int) -> Path:
    return Path(settings.MODELS_DIR) / "insights" / f"tenant-{int(tenant_id)}" / "unanswered-clusters.json"


def _requested_path(tenant_id: int) -> Path:
    return clusters_path(tenant_id).with_name("unanswered-clusters.requested.json")


def _write_json(path: Path, data: dict) -> None:
    """Whole or not at all: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def clusters_store(tenant_id: int, result: dict) -> None:
    """Keep the worker's latest grouping of a tenant's unanswered questions (see inference.clusters)."""
    _write_json(clusters_path(tenant_id), result)


def clusters_load(tenant_id: int) -> dict | None:
    """The last stored grouping, with `pending` (a newer one was asked for) and the time it was asked."""
    result = _read_json(clusters_path(tenant_id))
    requested = _read_json(_requested_path(tenant_id))
    if result is None and requested is None:
        return None
    result = result or {"clusters": [], "computed_at": None}
    asked = (requested or {}).get("requested_at")
    result["requested_at"] = asked
    result["pending"] = bool(asked and (not result.get("computed_at") or asked > result["computed_at"]))
    return result


def clusters_request(tenant, period: Period) -> None:
    """Ask for a new grouping of the tenant's unanswered questions in `period` (the worker side hears it)."""
    _write_json(_requested_path(tenant.id), {"requested_at": timezone.now().isoformat(),
                                            "from": period.start.isoformat(), "to": period.end.isoformat()})
    events.emit({"type": events.CLUSTERS_REQUESTED, "tenant": tenant.id,
                 "from": period.start.isoformat(), "to": period.end.isoformat()})


# --- the suggestions --------------------------------------------------------------------------


def _example(row: dict) -> dict:
    conversation = row["conversation_id"]
    return {"text": row["text"], "conversation": conversation, "url": conversation_url(conversation)}


def problem_intents(tenant_id: int, period: Period, limit: int = 5) -> list[dict]:
    """Intents whose visitor messages most often met negative sentiment, a thumbs down on the bot's reply,
    or a hand-off (other than the visitor asking for a person), with the newest such messages."""
    down = Exists(Feedback.objects.filter(message__reply_to=OuterRef("pk"), message__sender=SENDER.BOT,
                                          rating=Feedback.Rating.DOWN))
    handed = Exists(Message.objects.filter(reply_to=OuterRef("pk"), sender=SENDER.SYSTEM).exclude(handoff_code="")
                    .exclude(handoff_code=HandoffReason.ASKED_FOR_PERSON))
    messages = (visitor_messages_in(tenant_id, period).exclude(intent="").exclude(intent__in=NOT_AN_INTENTS_FAULT)
                .annotate(rated_down=down, handed_off=handed)
                .values("id", "intent", "sentiment", "created_at", "rated_down", "handed_off"))
    # One pass: the counts per intent, and the ids of its newest EXAMPLES messages that went badly.
    examples = ", ".join(f"max(CASE WHEN u.bad AND u.pos = {i} THEN u.id END) AS example_{i}"
                         for i in range(1, EXAMPLES + 1))
    rows = rows_over(messages, f"""
        SELECT u.intent AS intent, count(*) AS total, count(*) FILTER (WHERE u.bad) AS problems,
               count(*) FILTER (WHERE u.sentiment = %s) AS negative, count(*) FILTER (WHERE u.rated_down) AS down,
               count(*) FILTER (WHERE u.handed_off) AS handed_off, {examples}
        FROM (SELECT t.*, row_number() OVER (PARTITION BY t.intent, t.bad ORDER BY t.created_at DESC, t.id DESC) AS pos
              FROM (SELECT t.*, (t.sentiment = %s OR t.rated_down OR t.handed_off) AS bad FROM t) AS t) AS u
        GROUP BY u.intent HAVING count(*) FILTER (WHERE u.bad) > 0
        ORDER BY problems DESC, intent LIMIT %s""", ("negative", "negative", limit))
    ids = [row[f"example_{i}"] for row in rows for i in range(1, EXAMPLES + 1) if row[f"example_{i}"]]
    texts = {m["id"]: m for m in Message.objects.filter(id__in=ids).values("id", "text", "conversation_id")}
    for row in rows:
        found = [row.pop(f"example_{i}") for i in range(1, EXAMPLES + 1)]
        row["rate"] = round(row["problems"] / row["total"], 4)
        row["examples"] = [_example(texts[i]) for i in found if i in texts]
    return rows


def downrated_knowledge(tenant_id: int, period: Period, limit: int = 5) -> list[dict]:
    """Knowledge entries whose answers (the top grounding entry of a bot reply that was not a fallback) were
    rated down, most down ratings first, with how often they answered, the questions and agents' corrections."""
    rated_down = Exists(Feedback.objects.filter(message=OuterRef("pk"), rating=Feedback.Rating.DOWN))
    replies = (Message.objects.filter(conversation__tenant_id=tenant_id, sender=SENDER.BOT, handoff_code="",
                                      created_at__gte=period.since, created_at__lt=period.until)
               .annotate(entry=KT("grounding__0__entry"), rated_down=rated_down).exclude(entry=None))
    rows = list(replies.order_by().values("entry").annotate(
        down=Count("id", filter=Q(rated_down=True)), answers=Count("id"),
    ).filter(down__gt=0).order_by("-down", "entry")[:limit])
    ids = [int(r["entry"]) for r in rows if str(r["entry"]).isdigit()]
    entries = KnowledgeEntry.objects.filter(tenant_id=tenant_id, id__in=ids).in_bulk()
    # The evidence: the newest down-rated replies of those entries, the questions they answered and the
    # right replies agents wrote instead.
    down_replies = list(replies.filter(rated_down=True, entry__in=[r["entry"] for r in rows])
                        .order_by("-created_at", "-id")
                        .values("id", "entry", "conversation_id", question=F("reply_to__text"))[:200])
    corrections = dict(Feedback.objects.filter(message_id__in=[r["id"] for r in down_replies]).exclude(correction="")
                       .order_by("-updated_at").values_list("message_id", "correction"))
    examples: dict[str, list[dict]] = {}
    fixes: dict[str, list[str]] = {}
    for reply in down_replies:
        if reply["question"] and len(examples.setdefault(reply["entry"], [])) < EXAMPLES:
            examples[reply["entry"]].append(_example({**reply, "text": reply["question"]}))
        if reply["id"] in corrections and len(fixes.setdefault(reply["entry"], [])) < 2:
            fixes[reply["entry"]].append(corrections[reply["id"]])
    out = []
    for row in rows:
        entry = entries.get(int(row["entry"])) if str(row["entry"]).isdigit() else None
        if entry is None:
            continue
        out.append({"entry": entry.id, "question": entry.question, "answer": entry.answer,
                    "down": row["down"], "answers": row["answers"], "rate": round(row["down"] / row["answers"], 4),
                    "examples": examples.get(row["entry"], []), "corrections": fixes.get(row["entry"], [])})
    return out


def _unhappy_messages(tenant_id: int, period: Period, limit: int) -> list[dict]:
    """The newest visitor messages that are negative or that follow a bot reply rated down (the visitor's why),
    each with `after_down`. Two queries, not one with an OR: each alone is a plain filter or a semi-join."""
    fields = ("id", "conversation_id", "text", "created_at")
    after_down = Exists(Feedback.objects.filter(
        rating=Feedback.Rating.DOWN, message__sender=SENDER.BOT, message__conversation_id=OuterRef("conversation_id"),
        message__seq__lt=OuterRef("seq"), message__seq__gte=OuterRef("seq") - 2))
    messages = visitor_messages_in(tenant_id, period).order_by("-created_at", "-id")
    followed = {m["id"]: m for m in messages.filter(after_down).values(*fields)[:limit]}
    negative = list(messages.filter(sentiment="negative").values(*fields)[:limit])
    merged = {m["id"]: {**m, "after_down": m["id"] in followed} for m in negative}
    merged.update({i: {**m, "after_down": True} for i, m in followed.items()})
    return sorted(merged.values(), key=lambda m: (m["created_at"], m["id"]), reverse=True)[:limit]


_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def phrases(text: str, longest: int = 4) -> list[str]:
    """The text's phrases of 1 to `longest` words that neither begin nor end with a stop word ("still waiting",
    "waiting for my parcel"); negations count as words ("never arrived")."""
    words = _WORD.findall(text.lower())
    out = []
    for n in range(1, longest + 1):
        for i in range(len(words) - n + 1):
            gram = words[i:i + n]
            if gram[0] in STOP_WORDS or gram[-1] in STOP_WORDS or (n == 1 and gram[0] in NEGATIONS):
                continue
            out.append(" ".join(gram))
    return out


def complaint_terms(tenant_id: int, period: Period, limit: int = TERMS_LIMIT) -> list[dict]:
    """Phrases unhappy visitors use far more than the others, with the messages that use them."""
    from sklearn.feature_extraction.text import CountVectorizer

    unhappy = _unhappy_messages(tenant_id, period, TERMS_SAMPLE)
    if len(unhappy) < 2:
        return []
    others = list(visitor_messages_in(tenant_id, period).exclude(sentiment="negative")
                  .exclude(id__in=[m["id"] for m in unhappy if m["after_down"]])
                  .order_by("-created_at", "-id").values_list("text", flat=True)[:TERMS_SAMPLE])
    vectorizer = CountVectorizer(analyzer=phrases, binary=True, min_df=2)
    try:
        matrix = vectorizer.fit_transform([m["text"] for m in unhappy])
    except ValueError:  # no phrase used twice
        return []
    terms = vectorizer.get_feature_names_out()
    in_unhappy = matrix.sum(axis=0).A1
    in_others = (CountVectorizer(analyzer=phrases, binary=True, vocabulary=vectorizer.vocabulary_)
                 .transform(others).sum(axis=0).A1 if others else [0] * len(terms))
    n_unhappy, n_others = len(unhappy), len(others)
    scored = []
    for j, term in enumerate(terms):
        a, b = int(in_unhappy[j]), int(in_others[j])
        # Smoothed log ratio of the shares of unhappy and other messages that use the phrase.
        ratio = math.log((a + 0.5) / (n_unhappy + 1)) - math.log((b + 0.5) / (n_others + 1))
        if a >= 2 and ratio > math.log(2):
            scored.append((a * ratio, term, j, a, b))
    scored.sort(key=lambda s: (-s[0], s[1]))
    picked: list[tuple] = []
    for cand in scored:
        longer = [p for p in picked if f" {cand[1]} " in f" {p[1]} " and p[3] >= 0.6 * cand[3]]
        if longer:
            continue
        shorter = [p for p in picked if f" {p[1]} " in f" {cand[1]} " and cand[3] >= 0.6 * p[3]]
        if shorter:
            picked = [p for p in picked if p not in shorter]
        picked.append(cand)
        if len(picked) >= limit and not shorter:
            break
    out = []
    for _score, term, j, a, b in sorted(picked, key=lambda s: -s[0])[:limit]:
        rows = matrix[:, j].nonzero()[0]
        out.append({
            "term": term, "messages": a, "after_down": int(sum(1 for i in rows if unhappy[i]["after_down"])),
            "others": b, "sample": n_unhappy, "others_sample": n_others,
            "examples": [_example(unhappy[i]) for i in sorted(rows)[:EXAMPLES]],
        })
    return out


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def suggestions(tenant, period: Period) -> list[dict]:
    """Every suggestion, ranked by the visitor messages it concerns (ties: unanswered questions first)."""
    with page_reads():
        knowledge = downrated_knowledge(tenant.id, period)
        intents = problem_intents(tenant.id, period)
        terms = complaint_terms(tenant.id, period)
    slug, span = tenant.slug, period.as_filters()
    items = []
    stored = clusters_load(tenant.id) or {}
    for cluster in stored.get("clusters", []):
        if cluster["size"] < 2:
            continue
        items.append({
            "kind": "unanswered", "rank_key": 0, "impact": cluster["size"],
            "title": f"Add a knowledge entry: “{cluster['label']}”",
            "evidence": [f"{_plural(cluster['size'], 'question')} the bot could not answer, "
                         f"in {_plural(cluster['conversations'], 'conversation')}"],
            "examples": [{**e, "url": conversation_url(e["conversation"])} for e in cluster["examples"]],
            "link": review_url(slug, handed_off="yes", **span), "link_label": "Hand-offs in this period",
        })
    for row in knowledge:
        evidence = [f"Rated down {_plural(row['down'], 'time')} out of {_plural(row['answers'], 'answer')} "
                    f"({row['rate']:.0%})"]
        evidence += [f"An agent's correction: “{c}”" for c in row["corrections"]]
        items.append({
            "kind": "knowledge", "rank_key": 1, "impact": row["down"],
            "title": f"Rewrite the knowledge entry “{row['question']}”",
            "detail": row["answer"], "evidence": evidence, "examples": row["examples"],
            "link": review_url(slug, rating="down", **span), "link_label": "Replies rated down",
        })
    for row in intents:
        parts = [_plural(row["negative"], "negative message"), _plural(row["down"], "thumbs down", "thumbs down"),
                 _plural(row["handed_off"], "hand-off")]
        items.append({
            "kind": "intent", "rank_key": 2, "impact": row["problems"],
            "title": f"Improve how the bot handles “{row['intent']}”",
            "evidence": [f"{row['problems']} of {_plural(row['total'], 'message')} ({row['rate']:.0%}) went badly: "
                         + ", ".join(parts)],
            "examples": row["examples"],
            "link": review_url(slug, intent=row["intent"], **span), "link_label": "Its conversations",
        })
    for row in terms:
        evidence = [f"In {row['messages']} of the {_plural(row['sample'], 'unhappy message')} read, against "
                    f"{row['others']} of the {_plural(row['others_sample'], 'other')}"]
        if row["after_down"]:
            evidence.append(f"{row['after_down']} right after a thumbs down")
        items.append({
            "kind": "words", "rank_key": 3, "impact": row["messages"],
            "title": f"Unhappy visitors keep saying “{row['term']}”",
            "evidence": evidence, "examples": row["examples"],
            "link": review_url(slug, sentiment="negative", q=row["term"], **span), "link_label": "Negative messages",
        })
    items.sort(key=lambda s: (-s["impact"], s["rank_key"], s["title"]))
    return items


def clusters_status(tenant_id: int) -> dict:
    """What the page says about the stored grouping: when it was computed, over which days, and if a newer
    one is on its way."""
    stored = clusters_load(tenant_id)
    if stored is None:
        return {"computed_at": None, "pending": False}
    computed = stored.get("computed_at")
    return {
        "computed_at": datetime.fromisoformat(computed) if computed else None,
        "requested_at": datetime.fromisoformat(stored["requested_at"]) if stored.get("requested_at") else None,
        "pending": stored["pending"], "from": stored.get("from"), "to": stored.get("to"),
        "questions": stored.get("questions", 0), "clusters": len(stored.get("clusters", [])),
    }

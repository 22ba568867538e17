"""Whether a responder's reply may reach a visitor, and whether a responder earns visitors at all.

`reply_grounded`: a generated reply that writes an order number, e-mail, link, phone or any
number the visitor did not give, the retrieved entries do not hold and no training reply
contains is invented: it goes to agents as a suggestion only, never to the visitor.

`replies_compare`: the gate's responder part, Django-free. On frozen evaluation examples the
responder's replies and the retrieval / intent-reply answer's replies are scored by ROUGE-L
against the references; generation serves visitors only where it wins by more than noise (a
paired bootstrap interval of the gain above zero) and invents values in at most a small share
of its replies. Otherwise it feeds agent assist. `responder_compare(tenant, frozen, replies)` is
the gate's hook (`inference.gate.responder_serving`): it builds the baseline answers the way the
worker answers without a responder and calls `replies_compare`.
"""
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from inference.responder.metrics import rouge_l
from inference.responder.placeholders import PATTERNS
from nlu import OUT_OF_SCOPE

_NUMBER = re.compile(r"(?<![\w.,:])\d+(?:[.,:]\d+)*(?![\w])")
_DIGITS = re.compile(r"\D+")
MIN_PHONE_DIGITS = 7

VISITORS, ASSIST = "visitors", "assist"
MAX_INVENTED_SHARE = 0.02  # share of the responder's frozen-set replies allowed to fail `reply_grounded`
MIN_GAIN = 0.0  # ROUGE-L the responder must gain beyond the interval's lower bound
MIN_EXAMPLES = 20  # fewer frozen examples say nothing either way: assist
MIN_INTENT_EXAMPLES = 10  # an intent judged on its own (when the store as a whole does not win) needs this many


def _number(value: str) -> str:
    """One spelling of a number: no thousands separators, no all-zero decimals ("1,000.00" -> "1000")."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", value):
        value = value.replace(",", "")
    if re.fullmatch(r"\d+\.0+", value):
        value = value.split(".")[0]
    return value


def _values(text: str, inside: bool) -> set[str]:
    """Typed values: ("email", x), ("url", x), ("order", x), ("phone", digits), ("number", n).

    `inside`: also the numbers inside e-mails, links, order numbers and phones (for sources, so
    "order NW-123456" grounds a reply's "123456"); a reply's own such values are checked whole.
    """
    values, rest = set(), text
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(rest):
            value = match.group(0)
            if kind == "phone":
                values.add(f"phone:{_DIGITS.sub('', value)}")
            else:
                values.add(f"{kind}:{value.lower().rstrip('/')}")
        if not inside:
            rest = pattern.sub(" ", rest)
    values |= {f"number:{_number(m.group(0))}" for m in _NUMBER.finditer(rest)}
    if inside:  # "3-5 days", "9:00-17:00", "$25.99": every part counts as a number too
        values |= {f"number:{_number(m)}" for m in re.findall(r"\d+", text)}
    return values


@lru_cache(maxsize=512)
def _source_values(text: str) -> frozenset[str]:
    """A source's values, cached: the serving path passes the same training-reply text every message."""
    return frozenset(_values(text, inside=True))


def reply_values(text: str) -> set[str]:
    """The checkable values of a text: e-mails, links, order numbers, phones and numbers, each typed
    ("email:a@b.org", "order:nw-123456", "phone:15550100199", "number:30")."""
    return _values(text, inside=False)


def reply_ungrounded(reply: str, sources: Sequence[str]) -> set[str]:
    """The values `reply` writes that none of `sources` holds (empty: the reply is grounded)."""
    wanted = reply_values(reply)
    if not wanted:
        return set()
    known: set[str] = set()
    for source in sources:
        if source:
            known |= _source_values(source)
    phones = [v[6:] for v in known if v.startswith("phone:")]
    missing = set()
    for value in wanted - known:
        if value.startswith("phone:"):  # "+1 555 010 0199" grounds "555-010-0199" and the reverse
            digits = value[6:]
            if any(len(min(digits, p, key=len)) >= MIN_PHONE_DIGITS and (digits.endswith(p) or p.endswith(digits))
                   for p in phones):
                continue
        missing.add(value)
    return missing


def reply_grounded(reply: str, sources: list[str]) -> bool:
    """True when every value `reply` writes appears in one of `sources` (the message, the retrieved
    entries, the training replies): as the same e-mail, link, order number, phone (same digits) or
    number (same number, so "30 days" does not ground "3 days" and "1,000" grounds "1000")."""
    return not reply_ungrounded(reply, sources)


def bootstrap_interval(values: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """The 95% percentile-bootstrap interval of the mean of `values` (paired differences, say)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _side(replies: Sequence[str], scores: np.ndarray, invented: list[set[str]], texts: Sequence[str],
          resamples: int, seed: int) -> dict:
    failing = [i for i, values in enumerate(invented) if values]
    return {
        "rouge_l": round(float(scores.mean()), 4),
        "ci95": bootstrap_interval(scores, resamples, seed),
        "invented": len(failing),
        "invented_share": round(len(failing) / len(replies), 4),
        "empty": sum(not r.strip() for r in replies),
        "invented_examples": [{"text": texts[i], "reply": replies[i], "values": sorted(invented[i])}
                              for i in failing[:3]],
    }


def _replies_of(responder, examples: Sequence[dict]) -> list[str]:
    """The responder's reply to each example, asked the way serving asks (message, intent, knowledge)."""
    if isinstance(responder, Sequence) and not isinstance(responder, str):
        replies = [str(r) for r in responder]
    elif hasattr(responder, "reply_batch"):
        replies = []
        for start in range(0, len(examples), 32):
            chunk = examples[start:start + 32]
            replies += [r.text for r in responder.reply_batch(
                [([("visitor", e["text"])], e.get("intent", ""), list(e.get("knowledge", ()))) for e in chunk])]
    elif callable(responder):
        replies = [str(r) for r in responder([e["text"] for e in examples])]
    else:
        raise TypeError("responder must have reply_batch, be callable on texts, or be a list of replies")
    if len(replies) != len(examples):
        raise ValueError(f"{len(replies)} responder replies for {len(examples)} examples")
    return replies


def replies_compare(
    responder: "object | Callable[[list[str]], list[str]] | Sequence[str]",
    examples: Sequence[dict],
    baseline_replies: Sequence[str],
    sources: Sequence[str] = (),
    *,
    max_invented_share: float = MAX_INVENTED_SHARE,
    min_gain: float = MIN_GAIN,
    min_examples: int = MIN_EXAMPLES,
    resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Score a responder against the retrieval / intent-reply answer on frozen examples; say who serves.

    `responder`: a `Responder` (its `reply_batch` is called as serving calls it), a callable taking
    the example texts and returning replies, or the replies themselves. `examples`: dicts with
    "text" and "reply" (the reference), optionally "intent" and "knowledge" (the entries retrieval
    found: given to the responder and accepted as sources of values). `baseline_replies`: what the
    bot answers without the responder, one per example ("" where it had no answer; scored 0).
    `sources`: the tenant's training replies (and knowledge entries), which also ground values.

    "visitors" only when there are at least `min_examples` examples, the lower bound of the paired
    bootstrap 95% interval of (responder - baseline) ROUGE-L is above `min_gain`, and at most
    `max_invented_share` of the responder's replies write a value from nowhere.
    """
    examples = list(examples)
    baseline_replies = [r or "" for r in baseline_replies]
    if len(baseline_replies) != len(examples):
        raise ValueError(f"{len(baseline_replies)} baseline replies for {len(examples)} examples")
    if not examples:
        empty = {"rouge_l": None, "ci95": None, "invented": 0, "invented_share": 0.0, "empty": 0,
                 "invented_examples": []}
        return {"n": 0, "responder": empty, "baseline": dict(empty), "gain": None, "serving": ASSIST,
                "reason": "no frozen examples to compare the responder on"}
    replies = _replies_of(responder, examples)
    texts = [e["text"] for e in examples]
    refs = [e["reply"] for e in examples]
    grounds = [[e["text"], *e.get("knowledge", ()), *sources] for e in examples]
    ours = np.array([rouge_l(r, ref) for r, ref in zip(replies, refs)])
    theirs = np.array([rouge_l(r, ref) for r, ref in zip(baseline_replies, refs)])
    invented = [reply_ungrounded(r, g) for r, g in zip(replies, grounds)]
    result = {
        "n": len(examples),
        "responder": _side(replies, ours, invented, texts, resamples, seed),
        "baseline": _side(baseline_replies, theirs,
                          [reply_ungrounded(r, g) for r, g in zip(baseline_replies, grounds)], texts, resamples, seed),
    }
    gain = ours - theirs
    result["gain"] = {"rouge_l": round(float(gain.mean()), 4), "ci95": bootstrap_interval(gain, resamples, seed)}
    share = result["responder"]["invented_share"]
    low, high = result["gain"]["ci95"]
    figures = (f"ROUGE-L {result['responder']['rouge_l']:.3f} vs {result['baseline']['rouge_l']:.3f} for retrieval: "
               f"gain {result['gain']['rouge_l']:+.3f}, 95% interval [{low:+.3f}, {high:+.3f}]")
    if len(examples) < min_examples:
        serving, reason = ASSIST, f"only {len(examples)} frozen examples (at least {min_examples} needed to judge)"
    elif share > max_invented_share:
        serving, reason = ASSIST, (f"{result['responder']['invented']} of {len(examples)} replies write a value "
                                   f"from nowhere ({share:.1%} > {max_invented_share:.1%})")
    elif low <= min_gain:
        serving, reason = ASSIST, f"{figures} not above {min_gain:+.3f}"
    else:
        serving, reason = VISITORS, f"{figures}; {share:.1%} of replies with invented values"
    result["store_serving"] = serving  # the verdict on all intents together
    if any(e.get("intent") for e in examples):
        result["intents"] = _intents_serving(examples, gain, [bool(v) for v in invented], serving == VISITORS,
                                             min_gain, resamples, seed)
        won = sorted(i for i, v in result["intents"].items() if v["serving"] == VISITORS)
        if serving == ASSIST and won and len(examples) >= min_examples and share <= max_invented_share:
            serving, reason = VISITORS, f"{reason}; it wins clearly on {', '.join(won)} only, and serves those"
        elif serving == VISITORS and len(won) < len(result["intents"]):
            lost = sorted(set(result["intents"]) - set(won))
            reason = f"{reason}; not on {', '.join(lost)}, where agents get it as a suggestion"
    result["serving"], result["reason"] = serving, reason
    return result


def _intents_serving(examples: Sequence[dict], gain: np.ndarray, invented: list[bool], store_wins: bool,
                     min_gain: float, resamples: int, seed: int) -> dict[str, dict]:
    """Per intent of the frozen examples: its gain over the baseline and whom the responder serves there.

    Where the responder wins for the store, it serves every intent except those where it loses on average
    or invents a value. Where it does not, an intent still gets it when that intent alone shows a clear win
    (at least MIN_INTENT_EXAMPLES examples, the interval's lower bound above `min_gain`, nothing invented).
    """
    rows: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        rows.setdefault(e.get("intent") or "", []).append(i)
    out = {}
    for intent, members in sorted(rows.items()):
        if not intent:
            continue
        values = gain[members]
        clean = not any(invented[i] for i in members)
        low = bootstrap_interval(values, resamples, seed)[0] if len(members) > 1 else None
        if store_wins:
            serves = clean and float(values.mean()) >= 0
        else:
            serves = clean and len(members) >= MIN_INTENT_EXAMPLES and low is not None and low > min_gain
        out[intent] = {"n": len(members), "gain": round(float(values.mean()), 4), "ci95_low": low,
                       "serving": VISITORS if serves else ASSIST}
    return out


def serves_visitors(compared: dict | None, intent: str) -> bool:
    """Whether the gate's comparison (`replies_compare`'s result, stored in the version's evaluations)
    lets the responder answer a visitor's message of `intent`: intents it judged follow their verdict,
    others (too rare for the frozen set, or no intent) follow the store's."""
    compared = compared if isinstance(compared, dict) else {}
    judged = compared.get("intents") if isinstance(compared.get("intents"), dict) else {}
    verdict = judged.get(intent) if intent else None
    if isinstance(verdict, dict):
        return verdict.get("serving") == VISITORS
    return compared.get("store_serving", compared.get("serving", VISITORS)) == VISITORS


# --- the gate's hook: a tenant's frozen set, answered as the worker answers ----------------------


class Baseline(NamedTuple):
    answers: list[str]  # what the bot answers each text without a responder
    knowledge: list[list[str]]  # the entries retrieved for it
    by_knowledge: list[bool]  # the best entry is close enough to answer: the responder is not asked


def tenant_baseline_replies(tenant, texts: Sequence[str], intents: Sequence[str]) -> Baseline:
    """What the bot answers each text without a responder, and the knowledge retrieved for it.

    The best knowledge entry where it is close enough (`policy.knowledge_answers`), else the reply of the
    closest generic example of the intent (`Tenant.min_intent_reply_score`), else the fallback text. The
    example with the text itself is left out: a frozen example answered by its own reply would make
    retrieval look perfect.
    """
    from inference import policy
    from inference.intent_replies import intent_reply_index
    from inference.retrieval import knowledge_search

    index = intent_reply_index(tenant.id)
    answers, knowledge, by_knowledge = [], [], []
    for text, intent in zip(texts, intents):
        hits = knowledge_search(tenant.id, text, k=3)
        knowledge.append([h.answer for h in hits])
        own = _intent_reply_excluding(index, intent, text) if intent not in ("", OUT_OF_SCOPE) else None
        score = hits[0].score if hits else None
        by_knowledge.append(policy.knowledge_answers(tenant, score))
        if policy.intent_reply_answers(tenant, score, own[1] if own else None):
            answers.append(own[0])
        else:
            answers.append(hits[0].answer if by_knowledge[-1] else tenant.fallback_text)
    return Baseline(answers, knowledge, by_knowledge)


def _intent_reply_excluding(index, intent: str, text: str) -> tuple[str, float] | None:
    """`IntentReplyIndex.best` without the examples whose message is `text`."""
    same = " ".join(text.split()).lower()
    rows = [i for i, p in enumerate(index.pairs) if p[1] == intent and " ".join(p[2].split()).lower() != same]
    if not rows:
        return None
    scores = index.encoder.scores(index.vectors[rows], text)
    top = int(np.argmax(scores))
    return index.pairs[rows[top]][3], float(scores[top])


def responder_compare(tenant, frozen: Sequence, replies: Sequence) -> dict:
    """The gate's hook: the candidate's frozen-set `replies` (`Reply` objects or texts, one per frozen
    `EvalExample`, generated as the worker generates them) against the answers the tenant's bot gives
    without a responder; `replies_compare`'s figures and verdict ("serving": "visitors" | "assist").
    Values may come from the message, the retrieved entries and the tenant's training replies, as in
    `inference.answer`."""
    from inference.labelling import predict_active

    from inference.intent_replies import training_replies

    if len(replies) != len(frozen):
        raise ValueError(f"{len(replies)} replies for {len(frozen)} frozen examples")
    kept = [(e, getattr(r, "text", r)) for e, r in zip(frozen, replies) if e.reply]  # references only
    frozen, texts = [e for e, _ in kept], [t for _, t in kept]
    intents = []
    for e in frozen:
        found = predict_active("intent", tenant.id, e.text)
        intents.append(found[0].label if found else e.label)
    baseline, knowledge, by_knowledge = tenant_baseline_replies(tenant, [e.text for e in frozen], intents)
    # A knowledge entry close enough answers before the responder (inference.answer): so it does here.
    texts = [b if kb else t for t, b, kb in zip(texts, baseline, by_knowledge)]
    examples = [{"text": e.text, "reply": e.reply, "intent": i, "knowledge": k}
                for e, i, k in zip(frozen, intents, knowledge)]
    return replies_compare(texts, examples, baseline, [training_replies(tenant.id)])

"""Personal-data scrubbing benchmark: what `nlu.pii.pii_scrub` misses and what it scrubs that it should not.

    .venv/bin/python bench/pii.py [--bitext ../shared/data/bitext_customer_support/train.csv] [--show]

Three sets, each scored per kind (email, phone, card, iban, order, address):
- hand-written visitor messages with their personal data marked inline (`{email:mia@example.com}`), each
  kind in several formats, and messages full of numbers that are not personal data (prices, sizes,
  dates, times, quantities, product names);
- the demo store's data (chatbot/demo/*.json, *.jsonl): the personal data is its visitors' e-mail
  addresses (@example.com) and order numbers (NW- and six digits); the store's own help address, phone
  line and sample order number are scored twice: scrubbed (no `keep`) and kept (`keep=pii_values(answers)`,
  what the training-data builder passes);
- the Bitext file's messages, whose personal data is their order and purchase ids (5+ digits).
A value counts as caught when it no longer appears in the output, typed when a placeholder of its kind
replaced it; a false positive is a replacement that overlaps no marked value. Also the speed, in rows/s.
Needs no database. The last line of stdout is one JSON object.
"""
import argparse
import csv
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nlu.pii import KINDS, pii_find, pii_values  # noqa: E402

DEMO = REPO / "chatbot" / "demo"
BITEXT = REPO.parent / "shared" / "data" / "bitext_customer_support" / "train.csv"

# Realistic visitor (and agent) messages; {kind:value} marks the personal data.
CASES = [
    # e-mail
    "hi, my email is {email:mia.jones@example.com}",
    "Please send it to {email:Leo.Park+orders@mail.example.co.uk} thanks",
    "can u reply to {email:nina_r@example.org}? i can't check chat later",
    "{email:TOM.BAKER@EXAMPLE.COM} is the address on my account",
    "email: {email:j.o'neil@example.com}",
    # phone
    "call me at {phone:(415) 555-2671} after 5pm",
    "my number is {phone:+44 20 7946 0958}",
    "text {phone:07700 900123} when it ships",
    "You can reach me on {phone:555-123-4567}",
    "{phone:+49 30 901820} is my work phone",
    "phone: {phone:212.555.0199}",
    "call back {phone:06 12 34 56 78} please (France)",
    "my cell {phone:+1 (312) 555-0147} ext. is not needed",
    # card
    "I paid with {card:4111 1111 1111 1111}, why was it declined",
    "card number {card:5500-0000-0000-0004} exp 04/27",
    "charged twice on {card:378282246310005}",
    "my visa {card:4012888888881881} got charged $59.90",
    # iban
    "refund to my account {iban:DE89 3704 0044 0532 0130 00} please",
    "IBAN {iban:GB29NWBK60161331926819}",
    "use {iban:FR14 2004 1010 0505 0001 3M02 606} for the refund",
    # order
    "Where is order {order:NW-482913}?",
    "has {order:nw-219384} shipped yet",
    "my order number is {order:#12345678}",
    "order {order:123456} never arrived",
    "Order no. {order:A1B2C3D4E5} was wrong",
    "tracking number {order:1Z999AA10123456784} says delivered",
    "invoice {order:INV-2024-00017} has the wrong amount",
    "I want to return {order:NW-735912} and {order:NW-246810}",
    # address
    "ship it to {address:42 Baker Street}, I moved",
    "new address: {address:1600 Pennsylvania Ave NW, Washington, DC 20500}",
    "I live at {address:221B Baker St., London NW1 6XE}",
    "deliver to {address:350 5th Avenue, Apt 12B}",
    "it went to {address:12 Oak Road} instead of {address:14 Oak Road}",
    "my address is {address:Hauptstraße 12}, {address:10115} Berlin",
    "send it to {address:PO Box 4471}",
    "{address:77 Massachusetts Avenue, Cambridge, MA 02139}",
    # several kinds at once
    "I'm {email:sam.ortiz@example.com}, {phone:+1 415 555 2671}, order {order:NW-663201}, "
    "at {address:9 Elm Drive}",
    "Hi, {order:NW-101010} was paid by {card:4242 4242 4242 4242} and should go to {address:8 Pine Lane}",
    # written after the scrubber, not tuned to it: formats it may miss
    "reach me at {phone:4155552671} anytime",
    "my phone is {phone:415 555 2671}",
    "where is order {order:NW 482913}",
    "ship to {address:500 W Madison St, Apt 4B}",
    "i moved to {address:12 oak rd} last week",
    "the zip is {address:94110}",
    "my account number is {order:88812345} and card {card:5105 1051 0510 5100}",
    # obfuscated or spelled out (hard; expected misses)
    "my email is {email:casey dot wong at example dot com}",
    "call five five five, {phone:one two three four}",
]
# Numbers that are not personal data: none of these should lose anything.
NEGATIVES = [
    "Standard shipping takes 5-8 business days and costs $9.95",
    "I'm 5'10 and 170lbs, which size should I get?",
    "Is the Merino 200 Base Layer Crew warm enough for -10°C?",
    "I ordered 2 pairs of size 9 boots on 2024-05-12 at 10:30",
    "sizes 10 11 12 13 14 are sold out",
    "the Glacier 20°F Sleeping Bag has a torn seam",
    "you said 3-5 business days, it's been 14 days",
    "Do you have the 2023 model in stock? It was $249.99",
    "My gift card balance is $100 and the order is $180",
    "We're open Monday to Friday, 9am-6pm ET, closed on 12/25",
    "I got 11 instead of 9, need 1 more pair",
    "every 200 points becomes a $10 reward",
    "how many calories are in 100 grams of rice",
    "I've been waiting 45 minutes on the road for the courier",
]
MARK = re.compile(r"\{(\w+):([^{}]+)\}")


def parse(case: str) -> tuple[str, list[tuple[str, str]]]:
    return MARK.sub(lambda m: m.group(2), case), MARK.findall(case)


def score(items, keep=frozenset()) -> dict:
    """items: (text, [(kind, value)]). Per kind: marked, caught, typed, false positives; and the misses."""
    marked, caught, typed, false_pos = (defaultdict(int) for _ in range(4))
    misses, over = [], []
    for text, expected in items:
        scrubbed, found = pii_find(text, keep)
        for kind, value in expected:
            marked[kind] += 1
            if value not in scrubbed:
                caught[kind] += 1
                if any(f.kind == kind and (f.value in value or value in f.value) for f in found):
                    typed[kind] += 1
            else:
                misses.append(f"{kind}: {value}")
        for f in found:
            if not any(f.value in value or value in f.value for _, value in expected):
                false_pos[f.kind] += 1
                over.append(f"{f.kind}: {f.value}")
    kinds = [k for k in KINDS if marked[k] or false_pos[k]]
    per_kind = {k: {"marked": marked[k], "caught": caught[k], "typed": typed[k],
                    "recall": round(caught[k] / marked[k], 3) if marked[k] else None,
                    "false_positives": false_pos[k]} for k in kinds}
    total = sum(marked.values())
    return {"per_kind": per_kind, "recall": round(sum(caught.values()) / total, 3) if total else None,
            "false_positives": sum(false_pos.values()), "misses": misses[:20], "over_scrubbed": over[:20]}


def demo_texts() -> tuple[list[str], list[str]]:
    """(every text of the demo data, the store's own knowledge answers)."""
    knowledge = json.loads((DEMO / "knowledge_base.json").read_text())
    texts = [t for e in knowledge for t in (e["question"], e["answer"])]
    for intent in json.loads((DEMO / "intents.json").read_text()):
        texts += intent["examples"]
        texts += [t for p in intent.get("pairs", []) for t in (p["message"], p["reply"])]
    texts += json.loads((DEMO / "out_of_scope.json").read_text())
    texts += [json.loads(line)["text"] for line in (DEMO / "sentiment.jsonl").read_text().splitlines() if line]
    return texts, [e["answer"] for e in knowledge]


DEMO_VALUES = [("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")), ("order", re.compile(r"\bNW-\d{6}\b")),
               ("phone", re.compile(r"\b1-800-\d{3}-\d{4}\b"))]


def demo_items(texts: list[str], keep: frozenset) -> list:
    """The demo's personal data (found by the demo's own formats); the store's values only where not kept."""
    return [(t, [(kind, m.group(0)) for kind, rx in DEMO_VALUES for m in rx.finditer(t)
                 if m.group(0) not in keep]) for t in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bitext", default=str(BITEXT))
    parser.add_argument("--show", action="store_true", help="print each hand-written case scrubbed, to stderr")
    args = parser.parse_args()

    hand = [parse(c) for c in CASES]
    if args.show:
        for text, _ in hand + [(n, []) for n in NEGATIVES]:
            print(pii_find(text)[0], file=sys.stderr)
    result = {"handwritten": score(hand), "negatives": score([(n, []) for n in NEGATIVES]) | {"texts": len(NEGATIVES)}}

    texts, answers = demo_texts()
    keep = pii_values(answers)
    result["demo"] = {"texts": len(texts), "scrub_all": score(demo_items(texts, frozenset()))}
    result["demo"]["keep_store_values"] = score(demo_items(texts, keep), keep) | {"kept": sorted(keep)}

    path = Path(args.bitext)
    if path.is_file():
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        items = [(r["text"], [("order", m.group(0)) for m in re.finditer(r"\d{5,}", r["text"])]) for r in rows]
        result["bitext"] = {"texts": len(items)} | score(items)
        corpus = [r["text"] for r in rows] + [r["response"] for r in rows]
        start = time.perf_counter()
        for text in corpus:
            pii_find(text)
        elapsed = time.perf_counter() - start
        result["speed"] = {"texts": len(corpus), "seconds": round(elapsed, 2),
                           "texts_per_s": round(len(corpus) / elapsed), "mean_chars": round(
                               sum(map(len, corpus)) / len(corpus))}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

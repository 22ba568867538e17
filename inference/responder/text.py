"""Turning decoded tokens back into a reply a person would write: spacing and casing.

Uncased WordPiece decoding gives "your order ships in 2 - 3 days . visit northwind"; the
casing table, learnt from the training replies, restores "Northwind", and sentence
starts and "I" are capitalised.
"""
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

_WORD = re.compile(r"(?<![\[<_\w])[A-Za-z][A-Za-z']*")
_SPACING = [
    (re.compile(r"(?<=\w) ([-/]) (?=\w)"), r"\1"),
    (re.compile(r"(?<=\w) ' (?=\w)"), "'"),
    (re.compile(r"(?<=\d) ([.,:]) (?=\d)"), r"\1"),
    (re.compile(r"([$£€#]) (?=\d)"), r"\1"),
    (re.compile(r"(?<=\d) %"), "%"),
    (re.compile(r"([(\[]) "), r"\1"),
    (re.compile(r" ([)\]])"), r"\1"),
    (re.compile(r" ([.,!?;:])"), r"\1"),
    (re.compile(r"\s{2,}"), " "),
]
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")


def detokenize(text: str) -> str:
    for pattern, repl in _SPACING:
        text = pattern.sub(repl, text)
    return text.strip()


def truecase_table(texts: Iterable[str]) -> dict[str, str]:
    """lower-cased word -> its most frequent written form, where that form is not lower case."""
    forms: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        for i, match in enumerate(_WORD.finditer(text)):
            word = match.group(0)
            at_start = match.start() == 0 or text[:match.start()].rstrip()[-1:] in ".!?"
            if at_start and word[1:].islower():
                continue  # capitalised only because it starts a sentence
            forms[word.lower()][word] += 1
    return {low: c.most_common(1)[0][0] for low, c in forms.items() if c.most_common(1)[0][0] != low}


def truecase(text: str, table: dict[str, str]) -> str:
    text = _WORD.sub(lambda m: table.get(m.group(0), m.group(0)) if m.group(0).islower() else m.group(0), text)
    text = re.sub(r"\bi\b", "I", text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)

"""Copying order numbers, emails and the like from the message into the reply.

Values found in the source are swapped for placeholder tokens before the model sees
them; the reply's placeholders are swapped back after generation. A model trained on
masked pairs learns to write "<order 1>" where the data repeats the visitor's order
number, whatever the number is.
"""
import re
from dataclasses import dataclass, field

# Kind name -> pattern, in the order they are searched (longer, more specific first).
PATTERNS: dict[str, re.Pattern] = {
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "url": re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)]"),
    "order": re.compile(r"\b[A-Z]{2,5}-\d{4,12}\b"),
    # a space or dot only between digits ("555 010 0199", "555.010.0199"): "order 12345678. 4." is no phone
    "phone": re.compile(r"(?<![\w-])\+?\d(?:[\d()-]|[ .](?=[\d(])){7,}\d\b"),
}
SLOTS_PER_KIND = 3
# BERT-style vocabularies reserve [unusedN] tokens: placeholders take them, so the
# vocabulary (and the warm-started embeddings) stay as they are.
_BERT_UNUSED_OFFSET = 10


def placeholder_tokens(unused_style: bool) -> list[str]:
    """Every placeholder token, in a fixed order (kind by kind, slot by slot)."""
    tokens = []
    for k, kind in enumerate(PATTERNS):
        for slot in range(SLOTS_PER_KIND):
            if unused_style:
                tokens.append(f"[unused{_BERT_UNUSED_OFFSET + k * SLOTS_PER_KIND + slot}]")
            else:
                tokens.append(f"<{kind}_{slot + 1}>")
    return tokens


@dataclass
class Masker:
    """Masks one source text; the same instance masks its target and unmasks its reply."""

    tokens: list[str]
    values: dict[str, str] = field(default_factory=dict)  # placeholder -> value

    def _slot(self, kind: str, value: str) -> str | None:
        for token, known in self.values.items():
            if known == value:
                return token
        start = list(PATTERNS).index(kind) * SLOTS_PER_KIND
        for token in self.tokens[start:start + SLOTS_PER_KIND]:
            if token not in self.values:
                self.values[token] = value
                return token
        return None  # more values of a kind than slots: left as they are

    def mask_source(self, text: str) -> str:
        """Replace each value with its placeholder, allocating slots in order of appearance."""
        for kind, pattern in PATTERNS.items():
            text = pattern.sub(lambda m: self._slot(kind, m.group(0)) or m.group(0), text)
        return text

    def mask_target(self, text: str) -> str:
        """Replace only the values the source had: other values are facts to learn, not copy."""
        for token, value in sorted(self.values.items(), key=lambda tv: -len(tv[1])):
            text = text.replace(value, f" {token} " if not token.startswith("[") else token)
        return re.sub(r"\s{2,}", " ", text).strip()

    def fill(self, text: str) -> str:
        """A stored reply's placeholders filled with this source's values, its layout (line breaks, lists)
        kept: unlike `unmask`, which tidies a generated reply's spacing."""
        for token in self.tokens:
            if token in text:
                text = text.replace(token, self.values.get(token, ""))
        text = re.sub(r"[ \t]+([.,!?;:)])", r"\1", text)
        return re.sub(r"[ \t]{2,}", " ", text).strip()

    def unmask(self, text: str) -> str:
        """Put the values back; a placeholder with no value (the source had none) is dropped."""
        for token in self.tokens:
            text = text.replace(token, self.values.get(token, ""))
        text = re.sub(r"\s+([.,!?;:)])", r"\1", text)
        return re.sub(r"\s{2,}", " ", text).strip()


_LONG_NUMBER = re.compile(r"(?<![\w.,-])\d{5,}(?![\w])")


def personal_values(text: str) -> set[str]:
    """Values that may belong to one visitor: e-mails, order numbers, phones, and any run of five or more
    digits (order numbers without a prefix, "purchase 00123842"), as written; digits only for phones."""
    found = {m.group(0) for kind in ("email", "order") for m in PATTERNS[kind].finditer(text)}
    found |= {re.sub(r"\D", "", m.group(0)) for m in PATTERNS["phone"].finditer(text)}
    return found | {m.group(0) for m in _LONG_NUMBER.finditer(text)}


def values_strip(text: str) -> str:
    """The text without its order numbers, e-mails, URLs and phone numbers: they say nothing
    about what is asked, and would pull retrieval towards entries that mention such values."""
    for pattern in PATTERNS.values():
        text = pattern.sub(" ", text)
    return " ".join(text.split())

"""The widget's words: one table in widget.js, complete in every language (no browser needed).

widget.js keeps everything it writes for the visitor in `var STRINGS = {...}`, strict JSON between the
`// STRINGS-BEGIN` and `// STRINGS-END` lines: a language with a key missing, an extra key, an empty
text or other {placeholders} than English fails here, as does a text written in the code instead.
"""
import json
import re
from pathlib import Path

import pytest

WIDGET = Path(__file__).resolve().parents[2] / "chatbot" / "static" / "chatbot" / "widget.js"
LANGUAGES = {"en", "es", "de", "fr", "it", "pt"}
BLOCK = re.compile(r"^\s*// STRINGS-BEGIN\n\s*var STRINGS = (\{.*?\});\n\s*// STRINGS-END$", re.S | re.M)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def source() -> str:
    return WIDGET.read_text(encoding="utf-8")


def split() -> tuple[dict, str]:
    """The table, and the code around it."""
    text = source()
    match = BLOCK.search(text)
    assert match, "widget.js has no STRINGS table between // STRINGS-BEGIN and // STRINGS-END"
    return json.loads(match.group(1)), text[:match.start()] + text[match.end():]


TABLE, CODE = split()


def test_the_table_has_the_languages():
    assert LANGUAGES <= set(TABLE)
    assert all(re.fullmatch(r"[a-z]{2,3}", lang) for lang in TABLE)  # primary subtags: the widget matches on them


@pytest.mark.parametrize("lang", sorted(set(TABLE) - {"en"}))
def test_every_language_has_exactly_the_keys_of_english(lang):
    missing = sorted(set(TABLE["en"]) - set(TABLE[lang]))
    extra = sorted(set(TABLE[lang]) - set(TABLE["en"]))
    assert (missing, extra) == ([], []), f"{lang}: missing {missing}, not in English {extra}"


@pytest.mark.parametrize("lang", sorted(TABLE))
def test_no_text_is_empty_and_placeholders_match_english(lang):
    for key, text in TABLE[lang].items():
        assert isinstance(text, str) and text.strip(), f"{lang}.{key} is empty"
        assert text == text.strip(), f"{lang}.{key} has spaces around it"
        if key in TABLE["en"]:
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(TABLE["en"][key])), \
                f"{lang}.{key}: {text!r} has other placeholders than English"


def test_every_key_the_code_asks_for_is_in_the_table_and_every_key_is_used():
    asked = set(re.findall(r'\bt\("(\w+)"', CODE))
    assert asked, "widget.js calls t(\"key\") nowhere"
    assert asked - set(TABLE["en"]) == set()
    # Keys are also named as plain strings (a map from an error code to a key, then t(...) of it).
    unused = [key for key in TABLE["en"] if f'"{key}"' not in CODE]
    assert unused == []


def test_the_file_stays_ascii():
    """Any page encoding reads it: letters outside ASCII are \\u escapes (JSON reads them too)."""
    assert source().isascii()


def test_no_text_for_the_visitor_is_written_in_the_code():
    """Outside the table, no English text the visitor could see (console messages are for developers)."""
    english = set(TABLE["en"].values())
    offenders = []
    for number, line in enumerate(CODE.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(("//", "*", "/*")) or "console." in line:
            continue
        for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', line):
            prose = (re.match(r"[A-Z][a-z']+ [a-z']+", literal) or "\\u2026" in literal
                     or re.search(r"[a-z][.?!]$", literal) or literal in english)
            if prose:
                offenders.append(f"{number}: {literal}")
        for attribute in re.findall(r'(?:textContent|placeholder|title)\s*=\s*"([^"]+)"', line):
            offenders.append(f"{number}: {attribute}")
        for attribute in re.findall(r'"aria-label":\s*"([^"]+)"', line):
            offenders.append(f"{number}: {attribute}")
    assert offenders == []

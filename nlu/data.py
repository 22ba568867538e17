"""Reading labelled examples from CSV or JSONL files, with errors a person can act on."""
import csv
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import emoji

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson")

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_SPACE = re.compile(r"\s+")


class DataFileError(ValueError):
    """A data file that cannot be used as given: the message says what is wrong and where."""


@dataclass
class Example:
    text: str
    label: str
    extra: dict


def _emoji_words(chars: str, data: dict) -> str:
    return " " + data["en"].strip(":").replace("_", " ") + " "


def text_normalize(text: str) -> str:
    """The same light clean-up at training and prediction: HTML entities, emoji, user handles, links, whitespace.

    Emoji become their names ("😡" → "enraged face"): the encoder's vocabulary has no emoji,
    and to a customer-service model they carry much of a message's mood.
    """
    text = emoji.replace_emoji(html.unescape(text), replace=_emoji_words)
    text = _URL.sub("http", text)
    text = _HANDLE.sub("@user", text)
    return _SPACE.sub(" ", text).strip()


def rows_read(path: str | Path) -> tuple[list[str], list[dict]]:
    """Column names and rows (dicts of str) of a CSV/TSV or JSONL file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise DataFileError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{path}: unreadable encoding, not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    if not content.strip():
        raise DataFileError(f"{path}: the file is empty")
    if suffix in (".csv", ".tsv"):
        return _csv_rows(path, content, "\t" if suffix == ".tsv" else ",")
    return _jsonl_rows(path, content)


def _csv_rows(path: Path, content: str, delimiter: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(content.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    try:
        rows = [{k: (v if isinstance(v, str) else "") for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as exc:
        raise DataFileError(f"{path}: not a valid CSV file ({exc})") from None
    if not rows:
        raise DataFileError(f"{path}: the file has a header but no rows")
    return columns, rows


def _jsonl_rows(path: Path, content: str) -> tuple[list[str], list[dict]]:
    columns: dict[str, None] = {}
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataFileError(f"{path}, line {number}: expected a JSON object per line")
        row = {k: "" if v is None else str(v) for k, v in obj.items()}
        columns.update(dict.fromkeys(row))
        rows.append(row)
    return list(columns), rows


def examples_read(
    path: str | Path, text_col: str, label_col: str, extra_cols: tuple[str, ...] = (), skip_blank: bool = True
) -> list[Example]:
    """Labelled examples from a file; rows with a blank text or label are skipped."""
    columns, rows = rows_read(path)
    for col in (text_col, label_col, *extra_cols):
        if col not in columns:
            raise DataFileError(
                f"{path}: no column {col!r}; the file has {', '.join(repr(c) for c in columns) or 'no columns'}"
            )
    examples = []
    for row in rows:
        text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
        if skip_blank and (not text or not label):
            continue
        examples.append(Example(text, label, {c: (row.get(c) or "").strip() for c in extra_cols}))
    if not examples:
        raise DataFileError(f"{path}: no rows with both {text_col!r} and {label_col!r} filled in")
    return examples

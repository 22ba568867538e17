import pytest

from nlu.data import DataFileError, examples_read, text_normalize


def test_csv_and_jsonl_give_the_same_examples(tmp_path):
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("text,intent\nwhere is my order,order_status\n,refund\nrefund please,refund\n")
    jsonl_file = tmp_path / "a.jsonl"
    jsonl_file.write_text('{"text": "where is my order", "intent": "order_status"}\n\n'
                          '{"text": "refund please", "intent": "refund"}\n')
    for path in (csv_file, jsonl_file):
        examples = examples_read(path, "text", "intent")
        assert [(e.text, e.label) for e in examples] == [("where is my order", "order_status"),
                                                         ("refund please", "refund")]


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,intent\ncafé ouvert ?,opening_hours\n".encode("utf-8"))
    assert examples_read(path, "text", "intent")[0].text == "café ouvert ?"


def test_missing_column_names_the_columns_there_are(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("message,label\nhi,greeting\n")
    with pytest.raises(DataFileError, match=r"no column 'text'; the file has 'message', 'label'"):
        examples_read(path, "text", "label")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(DataFileError, match="empty"):
        examples_read(path, "text", "intent")


def test_header_only_csv_is_refused(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,intent\n")
    with pytest.raises(DataFileError, match="no rows"):
        examples_read(path, "text", "intent")


def test_non_utf8_file_is_refused_with_the_offending_byte(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,intent\ncafé,x\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"unreadable encoding, not UTF-8 \(byte 0xe9"):
        examples_read(path, "text", "intent")


def test_unknown_extension_is_refused(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"whatever")
    with pytest.raises(DataFileError, match="unknown file type '.xlsx'"):
        examples_read(path, "text", "intent")


def test_bad_json_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "hi", "intent": "greeting"}\n{"text": oops}\n')
    with pytest.raises(DataFileError, match="line 2: not valid JSON"):
        examples_read(path, "text", "intent")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        examples_read(tmp_path / "nope.csv", "text", "intent")


def test_normalize_replaces_handles_and_links():
    assert text_normalize("@united  my bag https://t.co/x is lost\n") == "@user my bag http is lost"


def test_normalize_names_emoji_and_unescapes_html():
    assert text_normalize("late again 😡 &amp; no refund") == "late again enraged face & no refund"
    assert text_normalize("love it ❤️👍") == "love it red heart thumbs up"

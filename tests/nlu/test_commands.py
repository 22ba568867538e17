"""The NLU management commands end to end, against the real database, with a tiny encoder."""
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from chatbot.models import ModelVersion, SentimentExample, TrainingExample
from inference import registry
from inference.labelling import message_labels

from .conftest import TINY_INTENTS, TINY_OOS

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), verbosity=0)
    return out.getvalue().strip().splitlines()


@pytest.fixture
def examples_csv(tmp_path):
    path = tmp_path / "examples.csv"
    lines = ["message,label,reply"]
    for intent, texts in TINY_INTENTS.items():
        lines += [f"{text},{intent},answer for {intent}" for text in texts]
    lines.append(",refund,")  # blank text: skipped
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny_settings(settings, tiny_encoder, tmp_path):
    settings.BASE_ENCODER_PATH = tiny_encoder
    settings.MULTILINGUAL_BASE = "never"  # the sentiment model too
    settings.MODELS_DIR = tmp_path / "models"
    settings.TORCH_THREADS = 1
    settings.NLU_QUANTIZE = False
    registry.reload()
    yield settings
    registry.reload()


def test_import_examples_writes_rows_with_source_import(tenant, examples_csv):
    lines = run("import_examples", tenant.slug, str(examples_csv), "--text", "message", "--intent", "label",
                "--response", "reply")
    assert lines[-1] == f"Imported 32 examples into {tenant.slug}."
    rows = TrainingExample.objects.filter(tenant=tenant)
    assert rows.count() == 32 and set(rows.values_list("source", flat=True)) == {"import"}
    assert rows.filter(intent="refund").first().response == "answer for refund"


def test_import_examples_reads_jsonl(tenant, tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text('{"q": "where is my order", "i": "order_status"}\n{"q": "hi", "i": "greeting"}\n')
    assert run("import_examples", tenant.slug, str(path), "--text", "q", "--intent", "i")[-1].startswith("Imported 2")


def test_import_examples_in_other_languages_keeps_each_rows_language(tenant, tmp_path):
    tenant.languages = ["en", "es", "de"]
    tenant.save()
    path = tmp_path / "es.csv"
    path.write_text("q,i\n¿dónde está mi pedido?,order_status\nhola,greeting\n")
    run("import_examples", tenant.slug, str(path), "--text", "q", "--intent", "i", "--language", "es")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"q": "wo ist meine Bestellung", "i": "order_status", "l": "de-AT"}\n'
                     '{"q": "where is my order", "i": "order_status", "l": "en"}\n'
                     '{"q": "hi", "i": "greeting", "l": ""}\n')
    run("import_examples", tenant.slug, str(mixed), "--text", "q", "--intent", "i", "--language-column", "l")
    assert dict(TrainingExample.objects.filter(tenant=tenant).values_list("text", "language")) == {
        "¿dónde está mi pedido?": "es", "hola": "es", "wo ist meine Bestellung": "de",
        "where is my order": "", "hi": ""}  # "": the store's main language


@pytest.mark.parametrize("args, message", [
    (("--language", "spanish"), "'spanish' is not a two-letter language code"),
    (("--language-column", "l"), "'klingon' in column 'l' is not a language code"),
])
def test_import_examples_refuses_a_bad_language_and_writes_nothing(tenant, tmp_path, args, message):
    path = tmp_path / "x.jsonl"
    path.write_text('{"q": "hola", "i": "greeting", "l": "es"}\n{"q": "nuq", "i": "greeting", "l": "klingon"}\n')
    with pytest.raises(CommandError, match=message):
        run("import_examples", tenant.slug, str(path), "--text", "q", "--intent", "i", *args)
    assert not TrainingExample.objects.filter(tenant=tenant).exists()


@pytest.mark.parametrize("content, name, columns, message", [
    (b"text,intent\nhi,greeting\n", "a.csv", ("message", "intent"),
     "no column 'message'; the file has 'text', 'intent'"),
    (b"", "a.csv", ("text", "intent"), "the file is empty"),
    ("text,intent\ncaf\u00e9,x\n".encode("latin-1"), "a.csv", ("text", "intent"), "unreadable encoding, not UTF-8"),
    (b"text,intent\nhi,greeting\n", "a.xlsx", ("text", "intent"), "unknown file type '.xlsx'"),
])
def test_import_examples_bad_files_give_a_clear_error_and_write_nothing(tenant, tmp_path, content, name, columns,
                                                                         message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("import_examples", tenant.slug, str(path), "--text", columns[0], "--intent", columns[1])
    assert not TrainingExample.objects.filter(tenant=tenant).exists()


def test_import_examples_unknown_tenant(examples_csv, db):
    with pytest.raises(CommandError, match="unknown tenant 'no-such-store'"):
        run("import_examples", "no-such-store", str(examples_csv), "--text", "message", "--intent", "label")


def test_train_nlu_with_too_few_examples_says_so(tenant, tiny_settings):
    TrainingExample.objects.create(tenant=tenant, text="hi", intent="greeting")
    with pytest.raises(CommandError, match="needs at least two intents"):
        run("train_nlu", tenant.slug)


def test_eval_nlu_without_a_model_says_so(tenant, examples_csv, tiny_settings):
    with pytest.raises(CommandError, match="no active intent model; train one first"):
        run("eval_nlu", tenant.slug, str(examples_csv), "--text", "message", "--intent", "label")


def test_train_nlu_registers_an_active_version_and_eval_nlu_prints_json_last(tenant, examples_csv, tmp_path,
                                                                             tiny_settings):
    run("import_examples", tenant.slug, str(examples_csv), "--text", "message", "--intent", "label")
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=t, intent="out_of_scope")
                                        for t in TINY_OOS)
    lines = run("train_nlu", tenant.slug, "--epochs", "25", "--lr", "1e-3", "--batch-size", "8")
    version = ModelVersion.objects.get(kind="intent", tenant=tenant, status="active")
    assert lines[0].startswith(f"Trained intent model {version.version} (active)")
    assert version.path.startswith(str(tiny_settings.MODELS_DIR))
    assert version.metrics["oos"]["method"] and version.metrics["n_oos_val"] == len(TINY_OOS)

    lines = run("eval_nlu", tenant.slug, str(examples_csv), "--text", "message", "--intent", "label")
    metrics = json.loads(lines[-1])
    assert {"accuracy", "macro_f1", "per_class", "model_version"} <= set(metrics)
    assert metrics["model_version"] == version.version and metrics["n"] == 32
    assert set(metrics["per_class"]) >= set(TINY_INTENTS)

    labels = message_labels(tenant.id, "where is my order")
    assert labels.intent_version == version.version and labels.intent_confidence is not None
    assert labels.sentiment == ""  # no sentiment model trained


def test_train_nlu_members_registers_a_seed_ensemble_that_labels_messages(tenant, examples_csv, tiny_settings):
    run("import_examples", tenant.slug, str(examples_csv), "--text", "message", "--intent", "label")
    lines = run("train_nlu", tenant.slug, "--members", "2", "--max-steps", "20", "--lr", "1e-3")
    version = ModelVersion.objects.get(kind="intent", tenant=tenant, status="active")
    assert json.loads(lines[1])["members"] == 2 and version.metrics["members"] == 2
    assert {"ensemble.json", "member-0", "member-1"} <= {p.name for p in Path(version.path).iterdir()}
    labels = message_labels(tenant.id, "where is my order")
    assert labels.intent_version == version.version and labels.intent in set(TINY_INTENTS) | {"out_of_scope"}


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_train_nlu_refuses_a_bad_member_count(tenant, tiny_settings, value):
    with pytest.raises(CommandError, match="--members"):
        run("train_nlu", tenant.slug, "--members", value)


def test_train_and_eval_sentiment_from_a_file_and_from_stored_examples(tmp_path, tiny_settings, tenant):
    path = tmp_path / "sentiment.jsonl"
    rows = [("i love it", "positive"), ("great thanks", "positive"), ("so happy", "positive"),
            ("terrible", "negative"), ("awful service", "negative"), ("i hate this", "negative"),
            ("my order number is 12", "neutral"), ("what time is it", "neutral"), ("send the invoice", "neutral")]
    path.write_text("".join(json.dumps({"t": t, "y": y}) + "\n" for t, y in rows))
    lines = run("train_sentiment", "--data", str(path), "--text", "t", "--label", "y", "--max-steps", "5")
    first = ModelVersion.objects.get(kind="sentiment", tenant=None, status="active")
    assert lines[0].startswith(f"Trained sentiment model {first.version}")

    SentimentExample.objects.bulk_create(SentimentExample(text=t, label=y) for t, y in rows)
    run("train_sentiment", "--max-steps", "5")
    active = ModelVersion.objects.get(kind="sentiment", tenant=None, status="active")
    assert active.pk != first.pk

    metrics = json.loads(run("eval_sentiment", str(path), "--text", "t", "--label", "y")[-1])
    assert metrics["n"] == 9 and 0.0 <= metrics["accuracy"] <= 1.0 and "macro_f1" in metrics
    assert message_labels(tenant.id, "i love it").sentiment in {"negative", "neutral", "positive"}


def test_train_sentiment_refuses_unknown_labels(tmp_path, tiny_settings):
    path = tmp_path / "s.csv"
    path.write_text("text,label\ngood,pos\nbad,neg\n")
    with pytest.raises(CommandError, match=r"unknown sentiment labels \['neg', 'pos'\]"):
        run("train_sentiment", "--data", str(path))

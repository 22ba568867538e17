"""The responder's Django side: which pairs a tenant trains on, training into the
registry, evaluation, and the commands' errors."""
import json

import pytest
from django.core.management import CommandError, call_command

from chatbot.models import Feedback, Message, ModelVersion, TrainingExample
from inference import registry
from inference.responder_services import (
    ResponderError,
    responder_active,
    responder_config,
    responder_evaluate,
    responder_pairs,
    responder_train,
)
from inference.responder.metrics import rouge_l
from inference.responder_gate import tenant_baseline_replies
from tests.factories import ConversationFactory, KnowledgeEntryFactory, MessageFactory

from .conftest import PAIRS


@pytest.fixture
def tenant_with_data(tenant):
    KnowledgeEntryFactory(tenant=tenant, question="How long does delivery take?", answer="Orders arrive in 3 days.")
    KnowledgeEntryFactory(tenant=tenant, question="old question", answer="old answer", is_active=False)
    TrainingExample.objects.bulk_create(
        [TrainingExample(tenant=tenant, text=m, intent="any", response=r, source="import") for m, r in PAIRS]
        + [TrainingExample(tenant=tenant, text="no reply here", intent="any")]
    )
    return tenant


@pytest.fixture
def tiny_config(tiny_base, settings, tmp_path):
    settings.MODELS_DIR = tmp_path / "models"
    registry.reload()
    return responder_config(base_path=tiny_base, decoder_layers=None, epochs=2, batch_size=8, threads=1,
                            train_encoder=True, eval_generate=False)


@pytest.mark.django_db
def test_pairs_come_from_knowledge_examples_with_replies_and_agent_corrections(tenant_with_data):
    tenant = tenant_with_data
    conversation = ConversationFactory(tenant=tenant, visitor__tenant=tenant)
    MessageFactory(conversation=conversation, seq=1, sender=Message.Sender.VISITOR, text="hi, I ordered a tent")
    MessageFactory(conversation=conversation, seq=2, sender=Message.Sender.BOT, text="Great choice!")
    question = MessageFactory(conversation=conversation, seq=3, sender=Message.Sender.VISITOR, text="is it waterproof?",
                              intent="product_question")
    bad = MessageFactory(conversation=conversation, seq=4, sender=Message.Sender.BOT, text="We ship abroad.",
                         reply_to=question)
    Feedback.objects.create(message=bad, source="agent", rating="down", correction="Yes, it is fully waterproof.")
    Feedback.objects.create(message=bad, source="visitor", rating="down")

    pairs = responder_pairs(tenant)
    assert len(pairs) == 1 + len(PAIRS) + 1
    assert (pairs[0].message, pairs[0].reply) == ("How long does delivery take?", "Orders arrive in 3 days.")
    correction = pairs[-1]
    assert (correction.message, correction.reply, correction.intent) == (
        "is it waterproof?", "Yes, it is fully waterproof.", "product_question")
    assert correction.history == [("visitor", "hi, I ordered a tent"), ("bot", "Great choice!")]


@pytest.mark.django_db
def test_training_registers_an_active_version_the_worker_can_reply_with(tenant_with_data, tiny_config):
    version = responder_train(tenant_with_data, tiny_config, progress=False)
    assert version.kind == ModelVersion.Kind.RESPONDER and version.is_active
    assert version.metrics["pairs"] == 1 + len(PAIRS) and version.metrics["epochs_run"] == 2
    responder, active = responder_active(tenant_with_data.id)
    assert active.pk == version.pk
    reply = responder.reply([("visitor", "where is my order NW-1234567")], "any", ["Orders arrive in 3 days."],
                            settings=tenant_with_data.generation)
    assert reply.tokens > 0 and 0 <= reply.score <= 1
    again, _ = responder_active(tenant_with_data.id)
    assert again is responder  # loaded once per process


@pytest.mark.django_db
def test_evaluate_reports_rouge_bleu_and_handoff_rate(tenant_with_data, tiny_config, tmp_path):
    responder_train(tenant_with_data, tiny_config, progress=False)
    data = tmp_path / "eval.jsonl"
    data.write_text("\n".join(json.dumps({"q": m, "a": r}) for m, r in PAIRS[:4]))
    metrics = responder_evaluate(tenant_with_data, data, "q", "a")
    assert metrics["n"] == 4 and 0 <= metrics["rouge_l"] <= 1 and 0 <= metrics["handoff_rate"] <= 1
    assert {"bleu", "mean_score", "version"} <= set(metrics)
    for key in ("rougeL", "retrieval_rougeL", "served_rougeL", "invented_rate", "served_by_responder"):
        assert 0 <= metrics[key] <= 1, key
    low, high = metrics["served_gain"]["ci95"]
    assert low <= metrics["served_gain"]["mean"] <= high
    assert metrics["served_gain"]["mean"] == pytest.approx(metrics["served_rougeL"] - metrics["retrieval_rougeL"],
                                                           abs=2e-4)
    assert metrics["serving"] == "visitors" and metrics["served_by_responder"] > 0


@pytest.mark.django_db
def test_a_responder_the_gate_keeps_from_visitors_is_evaluated_as_the_bot_answers_without_it(
        tenant_with_data, tiny_config, tmp_path):
    version = responder_train(tenant_with_data, tiny_config, progress=False)
    data = tmp_path / "eval.jsonl"
    data.write_text("\n".join(json.dumps({"q": m, "a": r}) for m, r in PAIRS[:4]))
    ModelVersion.objects.filter(pk=version.pk).update(serving=ModelVersion.Serving.ASSIST)
    metrics = responder_evaluate(tenant_with_data, data, "q", "a")
    assert metrics["served_by_responder"] == 0 and metrics["serving"] == "assist"
    without = tenant_baseline_replies(tenant_with_data, [m for m, _ in PAIRS[:4]], [""] * 4).answers
    expected = sum(rouge_l(w, r) for w, (_, r) in zip(without, PAIRS[:4])) / 4
    assert metrics["served_rougeL"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.django_db
def test_eval_command_prints_json_last(tenant_with_data, tiny_config, tmp_path, capsys):
    responder_train(tenant_with_data, tiny_config, progress=False)
    data = tmp_path / "eval.csv"
    data.write_text("text,reply\n" + "\n".join(f'"{m}","{r}"' for m, r in PAIRS[:3]) + "\n")
    call_command("eval_responder", tenant_with_data.slug, str(data), "--text", "text", "--response", "reply")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["n"] == 3


@pytest.mark.django_db
def test_commands_explain_what_is_wrong(tenant, tmp_path, tiny_config):
    with pytest.raises(CommandError, match="unknown tenant"):
        call_command("train_responder", "no-such-store")
    with pytest.raises(CommandError, match="pairs"):
        call_command("train_responder", tenant.slug)
    data = tmp_path / "eval.csv"
    data.write_text("text,reply\nhello,hi\n")
    with pytest.raises(CommandError, match="no such file"):
        call_command("eval_responder", tenant.slug, str(tmp_path / "missing.csv"), "--text", "text",
                     "--response", "reply")
    with pytest.raises(CommandError, match="no column 'answer'"):
        call_command("eval_responder", tenant.slug, str(data), "--text", "text", "--response", "answer")
    with pytest.raises(CommandError, match="no trained responder"):
        call_command("eval_responder", tenant.slug, str(data), "--text", "text", "--response", "reply")


def test_unknown_tenant_is_a_responder_error(db):
    with pytest.raises(ResponderError):
        responder_pairs_of("nobody")


def responder_pairs_of(slug):
    from inference.responder_services import tenant_resolve

    return responder_pairs(tenant_resolve(slug))

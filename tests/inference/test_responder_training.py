"""Responder training options the Bitext bench measures: whole example replies in the source,
the encoder's top layers fine-tuned alone, a time cap; on the tiny base, a few steps each."""
import pytest
import torch
from django.core.management import call_command
from transformers import BertModel

from chatbot.models import ModelVersion, TrainingExample

from inference.responder import Responder, ResponderTrainConfig, TrainPair, train_responder
from inference.responder.inputs import MAX_EXAMPLE_CHARS, build_source
from inference.responder.model import model_load

from .conftest import KNOWLEDGE, PAIRS


def _config(tiny_base, **overrides) -> ResponderTrainConfig:
    values = dict(base_path=tiny_base, decoder_layers=None, epochs=2, batch_size=4, lr=3e-3, warmup_ratio=0.0,
                  val_fraction=0.0, patience=100, threads=1, seed=3, eval_generate=False)
    return ResponderTrainConfig(**(values | overrides))


def _pairs() -> list[TrainPair]:
    return [TrainPair(m, r, knowledge=KNOWLEDGE[:1]) for m, r in PAIRS]


def test_example_replies_are_clipped_at_the_setting_and_old_models_keep_the_old_clip():
    example = "word " * 300
    short = build_source([("visitor", "hi")], examples=[example])
    long = build_source([("visitor", "hi")], examples=[example], max_example_chars=1200)
    assert len(short) < MAX_EXAMPLE_CHARS + 60 < 1100 < len(long) < 1260


def test_a_model_remembers_its_example_clip(tiny_base, tmp_path):
    train_responder(_pairs(), _config(tiny_base, examples=1, max_example_chars=900, max_train_steps=2), tmp_path,
                    progress=False)
    responder = Responder.load(tmp_path, device="cpu")
    assert responder.max_example_chars == 900 and responder.examples == 1
    source, _ = responder.source([("visitor", "hi")], "", [], examples=["x " * 600])
    assert 900 < len(source) < 1000


def test_only_the_top_encoder_layers_learn(tiny_base, tmp_path):
    metrics = train_responder(_pairs(), _config(tiny_base, train_encoder_layers=1, max_train_steps=3), tmp_path,
                              progress=False)
    assert metrics["steps"] == 3
    trained, _ = model_load(tmp_path)
    base = BertModel.from_pretrained(tiny_base)
    enc = trained.encoder
    assert torch.equal(enc.embeddings.word_embeddings.weight[:100], base.embeddings.word_embeddings.weight[:100])
    assert torch.equal(enc.encoder.layer[0].attention.self.query.weight,
                       base.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(enc.encoder.layer[1].attention.self.query.weight,
                           base.encoder.layer[1].attention.self.query.weight)


def test_the_time_cap_ends_training_after_the_current_step(tiny_base, tmp_path):
    metrics = train_responder(_pairs(), _config(tiny_base, epochs=50, max_train_seconds=1e-6), tmp_path,
                              progress=False)
    assert metrics["steps"] == 1 and metrics["epochs_run"] == 1
    assert (tmp_path / "config.json").is_file()


@pytest.mark.django_db
def test_the_train_command_passes_the_retrieve_and_refine_options(tenant, tiny_base, settings, tmp_path, capsys):
    settings.MODELS_DIR = tmp_path / "models"
    settings.RESPONDER_BASE_PATH = tiny_base
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=m, intent="any", response=r)
                                        for m, r in PAIRS)
    call_command("train_responder", tenant.slug, "--decoder-layers", "1", "--max-steps", "2", "--examples", "1",
                 "--example-chars", "800", "--encoder-layers", "1", "--max-target-tokens", "40",
                 "--max-minutes", "5", "--no-activate", verbosity=0)
    version = ModelVersion.objects.get(tenant=tenant, kind=ModelVersion.Kind.RESPONDER)
    config = version.metrics["config"]
    assert (config["examples"], config["max_example_chars"], config["train_encoder_layers"]) == (1, 800, 1)
    assert config["max_target_length"] == 40 and config["max_train_seconds"] == 300 and version.metrics["steps"] == 2


def test_a_time_capped_run_fits_its_learning_rate_schedule_to_the_cap():
    from inference.responder.train import SchedulePlan

    plan = SchedulePlan(total=1000, warmup_ratio=0.1)
    assert [plan.factor(s) for s in (0, 50, 100, 550, 1000)] == [0.0, 0.5, 1.0, 0.5, 0.0]
    plan.fit(step=10, elapsed=10.0, budget=300.0, steps_per_epoch=40)  # 1 s a step: 300 s hold about 296
    assert plan.total == 296 and plan.warmup == 29
    assert plan.factor(296) == 0.0 and 0 < plan.factor(200) < 1
    roomy = SchedulePlan(total=100, warmup_ratio=0.1)
    roomy.fit(step=10, elapsed=1.0, budget=300.0, steps_per_epoch=40)  # the cap is far: nothing changes
    assert (roomy.total, roomy.warmup) == (100, 10)

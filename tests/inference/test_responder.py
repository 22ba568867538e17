"""The responder on a tiny model: it trains, generates, keeps placeholders, and its fast
decoding path agrees with transformers' generate."""
import json

import pytest
import torch

from inference.responder import GenerationSettings, Responder, ResponderTrainConfig, TrainPair, train_responder
from inference.responder.fast import FastDecoder
from inference.responder.generate import GENERATED, STORED
from inference.responder.selection import consensus_pick
from inference.responder.train import METRICS_FILE

from .conftest import KNOWLEDGE, PAIRS


@pytest.fixture(scope="module")
def trained(tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("responder")
    config = ResponderTrainConfig(
        base_path=tiny_base, decoder_layers=None, epochs=60, batch_size=4, lr=3e-3, warmup_ratio=0.0,
        val_fraction=0.0, patience=100, threads=1, seed=3, examples=2,
        train_encoder=True,  # a random base: train it all
    )
    pairs = [TrainPair(message, reply, knowledge=KNOWLEDGE[:1]) for message, reply in PAIRS]
    metrics = train_responder(pairs, config, out, progress=False)
    return out, metrics


def test_training_saves_model_and_metrics(trained):
    out, metrics = trained
    assert (out / "config.json").is_file() and (out / "responder.json").is_file()
    assert json.loads((out / METRICS_FILE).read_text())["steps"] == metrics["steps"] == 60 * 3
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"] / 3


def test_trained_model_replies_with_a_score_and_latency(trained):
    reply = Responder.load(trained[0], device="cpu").reply([("visitor", "can I send back shoes")], "", KNOWLEDGE[:1])
    assert reply.text == "You can return any item within 30 days for a full refund."
    assert 0.0 < reply.score <= 1.0 and reply.tokens > 5 and reply.latency_ms > 0


def test_order_number_and_email_of_the_message_are_carried_into_the_reply(trained):
    responder = Responder.load(trained[0], device="cpu")
    reply = responder.reply([("visitor", "email me at zed@x.org about order NW-424242")], "", KNOWLEDGE[:1])
    assert "NW-424242" in reply.text and "zed@x.org" in reply.text
    assert "[unused" not in reply.text


def test_reply_batch_matches_single_replies(trained):
    responder = Responder.load(trained[0], device="cpu")
    messages = ("hello", "where is my order NW-000111", "do you ship abroad")
    requests = [([("visitor", m)], "", KNOWLEDGE[:1]) for m in messages]
    batch = [r.text for r in responder.reply_batch(requests)]
    assert batch == [responder.reply(*r).text for r in requests]


@pytest.mark.parametrize("trim_vocab,no_repeat,min_new", [(False, 0, 0), (True, 0, 0), (True, 2, 0), (False, 3, 20)])
def test_fast_path_returns_the_tokens_of_plain_greedy_generate(trained, trim_vocab, no_repeat, min_new):
    responder = Responder.load(trained[0], device="cpu", quantize=False, trim_vocab=trim_vocab)
    sources = [responder.source([("visitor", m)], "", KNOWLEDGE[:1])[0] for m, _ in PAIRS[:6]] + ["unseen words here"]
    batch = responder.tokenizer(sources, padding=True, return_tensors="pt")
    suppress = None
    if trim_vocab:  # the trimmed fast path equals generate restricted to the same tokens
        allowed = set(responder.vocab_ids)
        suppress = [i for i in range(len(responder.tokenizer)) if i not in allowed]
    with torch.inference_mode():
        ref = responder.model.generate(**batch, max_new_tokens=24, num_beams=1, do_sample=False,
                                       suppress_tokens=suppress, no_repeat_ngram_size=no_repeat or None,
                                       min_new_tokens=min_new)
    ids, _ = responder.fast.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=24,
                                     no_repeat_ngram_size=no_repeat, min_new_tokens=min_new)
    config = responder.model.generation_config
    for row, got in zip(ref.tolist(), ids):
        expected = [t for t in row[1:] if t != config.pad_token_id]
        if expected and expected[-1] == config.eos_token_id:
            expected = expected[:-1]
        assert got == expected


def test_quantized_fast_path_mostly_agrees_with_fp32(trained):
    exact = Responder.load(trained[0], device="cpu", quantize=False)
    quantized = Responder.load(trained[0], device="cpu", quantize=True)
    requests = [([("visitor", m)], "", KNOWLEDGE[:1]) for m, _ in PAIRS]
    same = sum(a.text == b.text for a, b in zip(exact.reply_batch(requests), quantized.reply_batch(requests)))
    assert same >= len(PAIRS) - 2


def test_generation_settings_are_honoured(trained):
    responder = Responder.load(trained[0], device="cpu")
    history, knowledge = [("visitor", "hello")], KNOWLEDGE[:1]
    forced = responder.reply(history, "", knowledge,
                             settings={"max_new_tokens": 40, "min_new_tokens": 40, "no_repeat_ngram_size": 0})
    assert forced.tokens == 40
    short = responder.reply(history, "", knowledge, settings={"max_new_tokens": 3})
    assert short.tokens == 3
    beams = responder.reply(history, "", knowledge, settings={"num_beams": 3})
    assert beams.tokens > 3 and 0 < beams.score <= 1
    sampled = responder.reply(history, "", knowledge, settings={"temperature": 0.7})
    assert sampled.tokens > 0


def test_generation_settings_from_a_tenant_dict_ignore_unknown_keys_and_clamp():
    s = GenerationSettings.from_dict({"max_new_tokens": 10_000, "num_beams": 0, "temperature": "0.5", "colour": "red",
                                      "no_repeat_ngram_size": "three"})
    assert (s.max_new_tokens, s.num_beams, s.temperature) == (256, 1, 0.5)
    assert s.no_repeat_ngram_size == GenerationSettings().no_repeat_ngram_size


def test_micro_batcher_answers_concurrent_requests(trained):
    from concurrent.futures import ThreadPoolExecutor

    responder = Responder.load(trained[0], device="cpu", micro_batch=True, max_wait_ms=20)
    try:
        messages = ["hello", "can I send back shoes", "where is my order NW-121212", "do you ship abroad"] * 3
        with ThreadPoolExecutor(max_workers=6) as pool:
            replies = list(pool.map(lambda m: responder.reply([("visitor", m)], "", KNOWLEDGE[:1]), messages))
        direct = responder.reply_batch([([("visitor", m)], "", KNOWLEDGE[:1]) for m in messages])
        assert [r.text for r in replies] == [r.text for r in direct]
        assert "NW-121212" in replies[2].text
    finally:
        responder.close()


def test_untrained_fast_decoder_matches_generate_on_a_warm_start(tiny_base):
    from inference.responder.model import warm_start

    model, tokenizer = warm_start(tiny_base, decoder_layers=1)
    model.eval()
    assert model.decoder.config.num_hidden_layers == 1
    batch = tokenizer(["where is my order", "hello"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        ref = model.generate(**batch, max_new_tokens=8, min_new_tokens=8, do_sample=False, num_beams=1)
    ids, _ = FastDecoder(model).generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=8,
                                         min_new_tokens=8)
    assert [row[1:9] for row in ref.tolist()] == ids


def test_reply_memory_is_saved_with_replies_masked_against_their_own_message(trained):
    from inference.responder.memory import ReplyMemory

    memory = ReplyMemory.load(trained[0])
    assert len(memory) == len(PAIRS)
    assert "NW-" not in " ".join(memory.replies) and "@" not in " ".join(memory.replies)


def test_reply_memory_skips_excluded_rows_and_duplicate_replies():
    import numpy as np

    from inference.responder.memory import ReplyMemory

    vectors = np.eye(4, dtype=np.float32)
    memory = ReplyMemory(["a", "b", "c", "d"], ["ra", "rb", "rb", "rd"], vectors)
    query = np.array([[1.0, 0.9, 0.8, 0.1]], dtype=np.float32)
    assert memory.nearest(query, 2) == [["ra", "rb"]]
    assert memory.nearest(query, 2, exclude=[{0}]) == [["rb", "rd"]]


def test_the_generated_reply_competes_with_the_stored_replies_of_similar_messages(trained):
    responder = Responder.load(trained[0], device="cpu")
    request = ([("visitor", "can I send back shoes")], "", KNOWLEDGE[:1])
    alone = responder.reply(*request, settings=GenerationSettings(candidates=0))
    assert alone.source == GENERATED and alone.agreement is None and alone.generated == alone.text
    chosen = responder.reply(*request, settings=GenerationSettings(candidates=4))
    assert chosen.generated == alone.text and chosen.agreement is not None
    assert chosen.source in (GENERATED, STORED)
    stored = responder.stored_replies("can I send back shoes", 4)
    assert chosen.text in [chosen.generated, *stored]
    assert chosen.text == [chosen.generated, *stored][consensus_pick([chosen.generated, *stored])[0]]


def test_a_stored_reply_gets_this_messages_values_and_one_it_cannot_fill_does_not_compete(trained):
    responder = Responder.load(trained[0], device="cpu")
    with_order = responder.stored_replies("where is my order NW-424242", 12)
    assert any("NW-424242" in r for r in with_order)
    assert not any("NW-1" in r or "NW-5" in r or "NW-9" in r or "[unused" in r for r in with_order)
    without = responder.stored_replies("where is my order", 12)
    assert without and not any("order" in r and "NW-" in r for r in without)  # no order number to put in
    assert len(without) < len(with_order)


def test_a_stored_reply_that_carries_another_visitors_number_does_not_compete(trained):
    from inference.responder.memory import ReplyMemory, sentence_vectors

    responder = Responder.load(trained[0], device="cpu")
    messages = ["cancel purchase 00123842", "cancel my purchase please"]
    replies = ["Purchase 00123842 is cancelled.\n\n1. You get an e-mail.\n2. The refund follows.",
               "Your purchase is cancelled."]
    responder.memory = ReplyMemory(messages, replies, sentence_vectors(responder.model.get_encoder(),
                                                                       responder.tokenizer, messages))
    assert responder.stored_replies("cancel purchase 55512345", 2) == ["Your purchase is cancelled."]
    assert responder.stored_replies("cancel purchase 00123842", 2)[0] == replies[0]  # its layout kept
    assert replies[0] in responder.stored_replies("cancel it", 2, knowledge=["Purchase 00123842 is ours."])


def test_personal_values_include_bare_order_numbers_but_not_short_amounts():
    from inference.responder.placeholders import personal_values

    assert personal_values("purchase 00123842 to bob@shop.example, order NW-123456, 30 days, $25.99") == {
        "00123842", "bob@shop.example", "NW-123456"}
    assert personal_values("Call +1 (555) 010-0199 about order 12345678. 4. Done") == {"15550100199", "12345678"}

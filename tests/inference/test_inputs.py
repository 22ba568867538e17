"""The responder's input text, placeholders, reply clean-up and metrics."""
import pytest

from inference.responder.inputs import MAX_TURN_CHARS, build_source, split_history
from inference.responder.metrics import corpus_bleu, reply_metrics, rouge_l
from inference.responder.placeholders import Masker, placeholder_tokens
from inference.responder.text import detokenize, truecase, truecase_table


def test_build_source_keeps_only_the_last_turns_before_the_message():
    history = [("visitor", f"turn {i}") for i in range(10)] + [("bot", "bot said"), ("visitor", "the question")]
    source = build_source(history, "order_status", ["fact A", "fact B", "fact C"], max_turns=3)
    assert source.startswith("message: the question || intent: order status")
    assert "fact 1: fact A" in source and "fact 2: fact B" in source and "fact C" not in source
    assert "turn 8" in source and "turn 9" in source and "bot: bot said" in source and "turn 7" not in source


def test_build_source_clips_long_turns():
    source = build_source([("visitor", "word " * 1000)])
    assert len(source) < MAX_TURN_CHARS + 50


def test_the_message_is_the_last_visitor_turn():
    assert split_history([("visitor", "a"), ("bot", "b"), ("visitor", "c"), ("agent", "d")]) == (
        "c", [("visitor", "a"), ("bot", "b")])


def test_placeholders_round_trip_message_values_into_the_reply():
    masker = Masker(placeholder_tokens(unused_style=True))
    source = masker.mask_source("order NW-123456 and NW-222333, mail me at a.b@x.io")
    assert "NW-" not in source and "@" not in source
    target = masker.mask_target("Order NW-222333 ships; we wrote to a.b@x.io. Call 555-0100-22 or see NW-999999.")
    assert "NW-222333" not in target and "a.b@x.io" not in target
    assert "NW-999999" in target  # not in the message: a fact, not a copy
    assert masker.unmask(target) == "Order NW-222333 ships; we wrote to a.b@x.io. Call 555-0100-22 or see NW-999999."


def test_a_placeholder_without_a_value_is_dropped():
    masker = Masker(placeholder_tokens(unused_style=False))
    assert masker.unmask("Your order <order_1> is late.") == "Your order is late."


def test_decoded_wordpieces_read_like_a_reply():
    table = truecase_table(["Welcome to Northwind Outfitters.", "Shop at Northwind."])
    text = truecase(detokenize("i ' m sorry , northwind ships in 2 - 3 days for $ 4 . 99 ."), table)
    assert text == "I'm sorry, Northwind ships in 2-3 days for $4.99."


def test_rouge_l_on_known_strings():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("", "anything") == 0.0
    # LCS "the cat the mat" = 4 of 6 and 4 of 5 tokens
    precision, recall = 4 / 6, 4 / 5
    assert rouge_l("the cat was on the mat", "the cat the mat today") == pytest.approx(
        2 * precision * recall / (precision + recall))


def test_bleu_on_known_strings():
    assert corpus_bleu(["the quick brown fox jumps"], ["the quick brown fox jumps"]) == pytest.approx(100.0)
    assert corpus_bleu(["a b c"], ["x y z"]) == 0.0
    metrics = reply_metrics(["the quick brown fox jumps over"], ["the quick brown fox jumps over the dog"])
    assert metrics["n"] == 1 and 0 < metrics["bleu"] < 100 and 0 < metrics["rouge_l"] < 1


def test_metrics_agree_with_the_reference_packages():
    rouge_score = pytest.importorskip("rouge_score.rouge_scorer")
    sacrebleu = pytest.importorskip("sacrebleu")
    from inference.responder.metrics import tokens

    preds = ["Your order NW-1 has shipped today and will arrive soon.", "We ship to 40 countries worldwide."]
    refs = ["Order NW-1 shipped today; it will arrive in a few days.", "We ship to 40 countries from our warehouse."]
    scorer = rouge_score.RougeScorer(["rougeL"])
    for p, r in zip(preds, refs):
        assert rouge_l(p, r) == pytest.approx(scorer.score(r, p)["rougeL"].fmeasure)
    expected = sacrebleu.corpus_bleu([" ".join(tokens(p)) for p in preds], [[" ".join(tokens(r)) for r in refs]],
                                     smooth_method="none", tokenize="none").score
    assert corpus_bleu(preds, refs) == pytest.approx(expected)

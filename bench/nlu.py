"""NLU benchmark: trains and evaluates the intent and sentiment classifiers on the public datasets.

    .venv/bin/python bench/nlu.py [--quick] [--tasks banking77,clinc150,bitext,sentiment,latency]
    .venv/bin/python bench/nlu.py --tasks clinc150 --intent-members 3   # the seed ensemble of the CLINC150 figure

Progress goes to stderr; the last line of stdout is one JSON object with every figure. No Django needed.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No OMP_WAIT_POLICY=PASSIVE here: sleeping threads add about 9 ms to a message's labelling
# (measured); export it yourself when training beside other work on a shared CPU.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nlu import OUT_OF_SCOPE  # noqa: E402
from nlu.data import examples_read  # noqa: E402
from nlu.ensemble import ensemble_train  # noqa: E402
from nlu.evaluate import classification_metrics, oos_metrics  # noqa: E402
from nlu.loading import labeller_load  # noqa: E402
from nlu.predict import Labeller, latency_measure, model_saved  # noqa: E402
from nlu.train import TrainConfig, split_stratified  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TASKS = ("banking77", "clinc150", "bitext", "sentiment", "latency")
SPLIT_SEED = 42  # the held-out splits stay fixed whatever --seed the models train with


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def subsample(texts, labels, per_class, seed):
    rng, seen, keep = random.Random(seed), {}, []
    order = list(range(len(texts)))
    rng.shuffle(order)
    for i in order:
        if seen.get(labels[i], 0) < per_class:
            seen[labels[i]] = seen.get(labels[i], 0) + 1
            keep.append(i)
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


def summary(report: dict) -> dict:
    return {k: report[k] for k in ("n", "accuracy", "macro_f1")}


def trained(name, args, train, config, members=1, **kwargs) -> tuple[Labeller, dict]:
    """Train (or with --reuse load) a model, or a seed ensemble of `members`, under the bench's models folder."""
    out = Path(args.models_dir) / name
    if args.reuse and model_saved(out):
        log(f"[{name}] reusing {out}")
        metrics = json.loads((out / "metrics.json").read_text())
    else:
        log(f"[{name}] training {members} model(s) on {len(train[0])} examples, {config.epochs} epochs")
        metrics = ensemble_train(train[0], train[1], config, out, progress=not args.no_progress, members=members,
                                 **kwargs)
    return labeller_load(out), metrics


def config_for(args, epochs, **kw) -> TrainConfig:
    return TrainConfig(base_encoder=args.base_encoder, epochs=epochs, threads=args.threads, seed=args.seed,
                       max_train_steps=args.max_steps, linear_probe_init=args.linear_probe_init, **kw)


def bench_banking77(args) -> dict:
    root = Path(args.data_dir) / "banking77"
    train = [(e.text, e.label) for e in examples_read(root / "train.csv", "text", "category")]
    test = [(e.text, e.label) for e in examples_read(root / "test.csv", "text", "category")]
    texts, labels = map(list, zip(*train))
    test_texts, test_labels = map(list, zip(*test))
    if args.quick:
        texts, labels = subsample(texts, labels, 8, SPLIT_SEED)
        test_texts, test_labels = subsample(test_texts, test_labels, 3, SPLIT_SEED)
    config = config_for(args, args.intent_epochs, val_fraction=0.05, lr=args.lr)
    clf, metrics = trained("banking77", args, (texts, labels), config, args.intent_members, task="intent")
    started = time.perf_counter()
    preds = clf.predict(test_texts)
    report = classification_metrics(test_labels, [p.label for p in preds])
    return {"test": summary(report), "val_accuracy": metrics["val_accuracy"], "temperature": metrics.get("temperature"),
            "val_ece_before": metrics.get("val_ece_before"), "val_ece_after": metrics["val_ece_after"],
            "train_seconds": metrics.get("train_seconds"), "eval_seconds": round(time.perf_counter() - started, 1),
            "epochs": config.epochs, "n_train": metrics.get("n_train")}


def bench_bitext(args) -> dict:
    """Bitext's 27 e-commerce intents: a seeded 20% of the file, stratified by intent, held out; fp32 and int8."""
    rows = examples_read(Path(args.data_dir) / "bitext_customer_support" / "train.csv", "text", "intent")
    texts, labels = [e.text for e in rows], [e.label for e in rows]
    train_idx, test_idx = split_stratified(labels, 0.2, SPLIT_SEED)
    train = ([texts[i] for i in train_idx], [labels[i] for i in train_idx])
    test_texts, test_labels = [texts[i] for i in test_idx], [labels[i] for i in test_idx]
    if args.quick:
        train = subsample(*train, 4, SPLIT_SEED)
        test_texts, test_labels = subsample(test_texts, test_labels, 2, SPLIT_SEED)
    config = config_for(args, args.intent_epochs, lr=args.lr)
    clf, metrics = trained("bitext", args, train, config, args.intent_members, task="intent")
    report = classification_metrics(test_labels, [p.label for p in clf.predict(test_texts)])
    int8 = labeller_load(Path(args.models_dir) / "bitext", quantize=True).predict(test_texts)
    return {"test": summary(report), "int8": summary(classification_metrics(test_labels, [p.label for p in int8])),
            "val_accuracy": metrics["val_accuracy"], "train_seconds": metrics.get("train_seconds"),
            "epochs": config.epochs, "n_train": metrics.get("n_train")}


def bench_clinc150(args) -> dict:
    data = json.loads((Path(args.data_dir) / "clinc150" / "data_full.json").read_text())
    texts, labels = map(list, zip(*data["train"]))
    val_texts, val_labels = map(list, zip(*data["val"]))
    oos_val = [t for t, _ in data["oos_val"]]
    test = data["test"] + [[t, OUT_OF_SCOPE] for t, _ in data["oos_test"]]
    if args.quick:
        texts, labels = subsample(texts, labels, 8, SPLIT_SEED)
        val_texts, val_labels = subsample(val_texts, val_labels, 2, SPLIT_SEED)
        test = data["test"][::30] + [[t, OUT_OF_SCOPE] for t, _ in data["oos_test"][::10]]
    config = config_for(args, args.intent_epochs, oos=True, lr=args.lr)
    clf, metrics = trained("clinc150", args, (texts, labels), config, args.intent_members, task="intent",
                           val_texts=val_texts, val_labels=val_labels, oos_val_texts=oos_val)
    test_texts, test_labels = [t for t, _ in test], [y for _, y in test]
    preds = clf.predict(test_texts)
    pred_labels = [p.label for p in preds]
    in_scope = [(y, p.top_label) for y, p in zip(test_labels, preds) if y != OUT_OF_SCOPE]
    result = oos_metrics(test_labels, pred_labels)
    result["in_scope_accuracy_without_rejection"] = round(sum(y == p for y, p in in_scope) / len(in_scope), 4)
    if preds and preds[0].oos_score is not None:  # diagnostic: the trade-off curve, read on test
        oos_s = sorted(p.oos_score for y, p in zip(test_labels, preds) if y == OUT_OF_SCOPE)
        cut = oos_s[min(len(oos_s) - 1, int(0.8 * len(oos_s)))]
        kept = [y == p.top_label and p.oos_score >= cut for y, p in zip(test_labels, preds) if y != OUT_OF_SCOPE]
        result["diagnostic_in_scope_accuracy_at_oos_recall_0.80"] = round(sum(kept) / len(kept), 4)
    # as the workers serve it by default (NLU_QUANTIZE): int8, with the threshold chosen for int8
    int8 = labeller_load(Path(args.models_dir) / "clinc150", quantize=True).predict(test_texts)
    result["int8"] = oos_metrics(test_labels, [p.label for p in int8])
    oos = metrics["oos"] or {}
    return {"test": result, "n_test_in_scope": len(in_scope), "n_test_oos": len(test) - len(in_scope),
            "oos_method": oos.get("method"), "oos_threshold": oos.get("threshold"),
            "oos_val_candidates": oos.get("candidates"), "val_accuracy": metrics["val_accuracy"],
            "temperature": metrics.get("temperature"), "val_ece_after": metrics["val_ece_after"],
            "train_seconds": metrics.get("train_seconds"), "epochs": config.epochs}


def bench_sentiment(args) -> dict:
    data_dir = Path(args.data_dir)
    airline = examples_read(data_dir / "airline_sentiment" / "tweets.csv", "text", "sentiment")
    texts, labels = [e.text for e in airline], [e.label for e in airline]
    rest, test_idx = split_stratified(labels, 0.1, SPLIT_SEED)  # 10 % held-out test
    test_texts, test_labels = [texts[i] for i in test_idx], [labels[i] for i in test_idx]
    texts, labels = [texts[i] for i in rest], [labels[i] for i in rest]
    train_idx, val_idx = split_stratified(labels, 1 / 9, SPLIT_SEED)  # 10 % of all for validation
    val = ([texts[i] for i in val_idx], [labels[i] for i in val_idx])
    train = ([texts[i] for i in train_idx], [labels[i] for i in train_idx])
    names = ["negative", "neutral", "positive"]
    tw = data_dir / "tweeteval_sentiment"
    tw_read = lambda name: (tw / f"{name}.txt").read_text(encoding="utf-8").splitlines()  # noqa: E731
    tw_val = (tw_read("val_text"), [names[int(x)] for x in tw_read("val_labels")])
    tw_test = (tw_read("test_text"), [names[int(x)] for x in tw_read("test_labels")])
    if args.sentiment_with_tweeteval_val:
        train = (train[0] + tw_val[0], train[1] + tw_val[1])
    if args.quick:
        train = subsample(*train, 60, SPLIT_SEED)
        val = subsample(*val, 20, SPLIT_SEED)
        test_texts, test_labels = subsample(test_texts, test_labels, 30, SPLIT_SEED)
        tw_test = subsample(*tw_test, 30, SPLIT_SEED)
    config = config_for(args, args.sentiment_epochs, max_length=128, lr=args.sentiment_lr)
    # measured: a fitted 3-class head made the first epoch diverge; without epochs the fitted head is the model
    config.linear_probe_init = args.sentiment_epochs == 0
    clf, metrics = trained("sentiment", args, train, config, args.sentiment_members, task="sentiment",
                           val_texts=val[0], val_labels=val[1])
    airline_report = classification_metrics(test_labels, [p.label for p in clf.predict(test_texts)])
    tw_report = classification_metrics(tw_test[1], [p.label for p in clf.predict(tw_test[0])])
    return {"airline_test": summary(airline_report), "tweeteval_test": summary(tw_report),
            "trained_on": "airline 80%" + (" + tweeteval val" if args.sentiment_with_tweeteval_val else ""),
            "val_accuracy": metrics["val_accuracy"], "temperature": metrics.get("temperature"),
            "val_ece_before": metrics.get("val_ece_before"), "val_ece_after": metrics["val_ece_after"],
            "train_seconds": metrics.get("train_seconds"), "epochs": config.epochs, "n_train": metrics.get("n_train")}


def bench_latency(args) -> dict:
    intent_dir = next((Path(args.models_dir) / n for n in ("banking77", "clinc150")
                       if model_saved(Path(args.models_dir) / n)), None)
    sentiment_dir = Path(args.models_dir) / "sentiment"
    if intent_dir is None or not model_saved(sentiment_dir):
        return {"skipped": "needs a trained intent model and the sentiment model"}
    test = examples_read(Path(args.data_dir) / "banking77" / "test.csv", "text", "category")
    texts = [e.text for e in test][:: max(1, len(test) // args.latency_messages)][: args.latency_messages]
    result = {"intent_model": intent_dir.name, "messages": len(texts), "threads": torch.get_num_threads()}
    for quantize in (False, True):
        models = [labeller_load(intent_dir, quantize=quantize), labeller_load(sentiment_dir, quantize=quantize)]
        result["int8" if quantize else "fp32"] = latency_measure(models, texts)
    if intent_dir.name == "banking77" and not args.quick:  # does int8 keep the accuracy?
        labelled = [(e.text, e.label) for e in test]
        for quantize in (False, True):
            clf = labeller_load(intent_dir, quantize=quantize)
            preds = clf.predict([t for t, _ in labelled])
            acc = sum(p.label == y for p, (_, y) in zip(preds, labelled)) / len(labelled)
            result["int8" if quantize else "fp32"]["banking77_accuracy"] = round(acc, 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--models-dir", default=str(Path(tempfile.gettempdir()) / "nlu-bench"))
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--quick", action="store_true", help="tiny subsets and one epoch: a smoke run")
    parser.add_argument("--reuse", action="store_true", help="load models already in --models-dir")
    parser.add_argument("--base-encoder", default="", help="local HF folder (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--intent-epochs", type=int, default=5)
    parser.add_argument("--intent-members", type=int, default=1, help="seed ensemble size of the intent models")
    parser.add_argument("--sentiment-members", type=int, default=1, help="seed ensemble size of the sentiment model")
    parser.add_argument("--sentiment-epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--no-linear-probe-init", dest="linear_probe_init", action="store_false",
                        help="intents: start from a random head instead of one fitted on frozen features")
    parser.add_argument("--sentiment-lr", type=float, default=5e-5)
    parser.add_argument("--no-sentiment-tweeteval-val", dest="sentiment_with_tweeteval_val", action="store_false",
                        help="train sentiment on airline tweets only (default adds TweetEval's val split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42, help="training seed (the data splits stay fixed)")
    parser.add_argument("--max-steps", type=int, default=0, help="cap training steps per model (0: no cap)")
    parser.add_argument("--latency-messages", type=int, default=300)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.intent_epochs = args.sentiment_epochs = 1
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        parser.error(f"unknown tasks: {sorted(unknown)}")
    if not Path(args.data_dir).is_dir():
        parser.error(f"no data folder at {args.data_dir}")
    torch.set_num_threads(args.threads)
    results = {"conditions": {"threads": args.threads, "quick": args.quick, "seed": args.seed,
                              "torch": torch.__version__, "cpu_count": os.cpu_count()}}
    for task in tasks:
        started = time.perf_counter()
        results[task] = globals()[f"bench_{task}"](args)
        results[task]["wall_seconds"] = round(time.perf_counter() - started, 1)
        log(f"[{task}] {json.dumps(results[task])}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

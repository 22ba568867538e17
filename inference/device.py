"""Which device the platform's models run on: the INFERENCE_DEVICE setting (CUDA when present
under `auto`, CPU otherwise), with TORCH_THREADS applied on the CPU."""
from functools import lru_cache

import torch
from django.conf import settings

from inference.responder.device import pick_device


@lru_cache(maxsize=1)
def inference_device() -> torch.device:
    device = pick_device(getattr(settings, "INFERENCE_DEVICE", "auto"))
    threads = getattr(settings, "TORCH_THREADS", 0)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    return device

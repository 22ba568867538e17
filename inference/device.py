"""Which device and precision the models run with: CUDA when present, CPU otherwise."""
from functools import lru_cache

import torch
from django.conf import settings


@lru_cache(maxsize=1)
def inference_device() -> torch.device:
    wanted = getattr(settings, "INFERENCE_DEVICE", "auto")
    if wanted == "cpu" or (wanted == "auto" and not torch.cuda.is_available()):
        threads = getattr(settings, "TORCH_THREADS", 0)
        if threads:
            torch.set_num_threads(threads)
        return torch.device("cpu")
    return torch.device("cuda")


def inference_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU supports it, fp16 on older GPUs, fp32 on the CPU."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

"""Device and precision of the responder: CUDA (bf16, or fp16 on older GPUs) when present, else the CPU."""
import torch


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """auto: CUDA when present, else the CPU."""
    if isinstance(name, torch.device):
        return name
    if name in ("", "auto", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

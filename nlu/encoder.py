"""The base encoder: tokenizer and transformer loaded from a local folder, pooling, CPU threads."""
import os
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def encoder_load(path: str | Path, from_config: bool = False):
    """Tokenizer and encoder from a local HF folder; `from_config` builds untrained weights."""
    path = str(path)
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if from_config:
        model = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=True))
    else:
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # else every load reports the pooler weights left out
        try:  # BERT-like encoders: the pooler is unused, leave it out
            model = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
        except TypeError:
            model = AutoModel.from_pretrained(path, local_files_only=True)
        finally:
            hf_logging.set_verbosity(verbosity)
    return tokenizer, model


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors the attention mask keeps."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@torch.inference_mode()
def sentence_vectors(encoder, tokenizer, texts, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """L2-normalised mean-pooled embeddings (the all-MiniLM-L6-v2 recipe), as float32 rows."""
    device = next(encoder.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        pooled = mean_pool(encoder(**batch).last_hidden_state.float(), batch["attention_mask"])
        out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
    if not out:
        return np.zeros((0, encoder.config.hidden_size), dtype=np.float32)
    return np.concatenate(out)


def threads_set(threads: int | None) -> None:
    """Pin torch's CPU threads (0 or None: leave torch's default)."""
    if threads:
        torch.set_num_threads(threads)

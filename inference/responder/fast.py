"""A lean decoding loop for warm-started BERT encoder-decoders.

transformers' `generate` spends most of a step in Python bookkeeping when the model is
this small. Here the decoder's weights are repacked once (fused QKV, cross-attention
keys/values computed once per request, a key/value cache allocated up front, an output
layer trimmed to the tokens the tenant's replies use) and one step is a handful of
matmuls. Linear layers can be int8-quantized dynamically on the CPU.
"""
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertLMHeadModel, EncoderDecoderModel


def supports(model) -> bool:
    """Only BERT-decoder encoder-decoders (the warm start) take the fast path."""
    return (
        isinstance(model, EncoderDecoderModel)
        and isinstance(model.decoder, BertLMHeadModel)
        and getattr(model, "enc_to_dec_proj", None) is None
        and model.decoder.config.hidden_act in ("gelu", "gelu_new", "gelu_python")
    )


def _linear(*layers: nn.Linear) -> nn.Linear:
    """One Linear computing several (fused along the output dimension)."""
    weight = torch.cat([layer.weight for layer in layers])
    bias = torch.cat([layer.bias for layer in layers])
    fused = nn.Linear(weight.shape[1], weight.shape[0], device=weight.device, dtype=weight.dtype)
    fused.weight.data.copy_(weight)
    fused.bias.data.copy_(bias)
    return fused


class _Layer(nn.Module):
    def __init__(self, layer):
        super().__init__()
        own, cross = layer.attention, layer.crossattention
        self.qkv = _linear(own.self.query, own.self.key, own.self.value)
        self.self_out, self.self_norm = own.output.dense, own.output.LayerNorm
        self.cross_q = cross.self.query
        self.cross_kv = _linear(cross.self.key, cross.self.value)
        self.cross_out, self.cross_norm = cross.output.dense, cross.output.LayerNorm
        self.ffn_in, self.ffn_out, self.ffn_norm = layer.intermediate.dense, layer.output.dense, layer.output.LayerNorm


class FastDecoder(nn.Module):
    """Greedy and sampled decoding with a static key/value cache.

    `vocab_ids` (sorted token ids) restricts the output layer to those tokens; the
    tokens returned are always ids of the full vocabulary.
    """

    def __init__(self, model: EncoderDecoderModel, vocab_ids: list[int] | None = None):
        super().__init__()
        bert, head = model.decoder.bert, model.decoder.cls.predictions
        config = model.decoder.config
        self.encoder = model.encoder
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.heads
        self.eps = config.layer_norm_eps
        emb = bert.embeddings
        self.word = emb.word_embeddings
        self.position = emb.position_embeddings
        self.register_buffer("type0", emb.token_type_embeddings.weight[0].detach().clone(), persistent=False)
        self.emb_norm = emb.LayerNorm
        self.layers = nn.ModuleList(_Layer(layer) for layer in bert.encoder.layer)
        self.transform, self.head_norm = head.transform.dense, head.transform.LayerNorm
        weight, bias = head.decoder.weight, head.decoder.bias
        if vocab_ids is not None:
            index = torch.tensor(sorted(vocab_ids), dtype=torch.long, device=weight.device)
            weight, bias = weight[index], bias[index]
            self.register_buffer("vocab_ids", index, persistent=False)
        else:
            self.vocab_ids = None
        self.out = nn.Linear(weight.shape[1], weight.shape[0], device=weight.device, dtype=weight.dtype)
        self.out.weight.data.copy_(weight.detach())
        self.out.bias.data.copy_(bias.detach())
        self.start_id = model.generation_config.decoder_start_token_id
        self.eos_id = model.generation_config.eos_token_id
        self.pad_id = model.generation_config.pad_token_id
        self.max_positions = config.max_position_embeddings
        self.requires_grad_(False)

    def quantize(self, encoder: bool = True) -> bool:
        """int8 weights for the linear layers (CPU only); False where torch lacks it.

        The encoder (shared with the wrapped model, so its `generate` sees it too) runs
        once per reply over the whole source; quantizing it roughly halves that time.
        """
        quantize_dynamic = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
        if quantize_dynamic is None:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eager quantization is deprecated in favour of torchao
            for name in ("layers", "transform", "out") + (("encoder",) if encoder else ()):
                part = getattr(self, name)
                if isinstance(part, nn.Linear):
                    part = nn.Sequential(part)
                    quantize_dynamic(part, {nn.Linear}, dtype=torch.qint8, inplace=True)
                    setattr(self, name, part[0])
                else:
                    quantize_dynamic(part, {nn.Linear}, dtype=torch.qint8, inplace=True)
        return True

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, H, T, d]
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def _norm(self, x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
        return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, self.eps)

    @torch.inference_mode()
    def prepare(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> dict:
        """Encode the source once; cross-attention keys/values and an empty cache per layer."""
        memory = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        batch = input_ids.shape[0]
        length = min(max_new_tokens + 1, self.max_positions)
        dtype, device = memory.dtype, memory.device
        cross = []
        for layer in self.layers:
            k, v = layer.cross_kv(memory).chunk(2, dim=-1)
            cross.append((self._split(k).contiguous(), self._split(v).contiguous()))
        mask = torch.zeros(batch, 1, 1, input_ids.shape[1], dtype=dtype, device=device)
        mask.masked_fill_(attention_mask[:, None, None, :] == 0, torch.finfo(dtype).min)
        shape = (batch, self.heads, length, self.head_dim)
        cache = [(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
                 for _ in self.layers]
        return {"cross": cross, "mask": mask, "cache": cache, "length": length}

    @torch.inference_mode()
    def step(self, state: dict, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Log-probabilities over the (trimmed) vocabulary for the next token; tokens: [B]."""
        h = self.word(tokens) + self.position.weight[position] + self.type0
        h = self._norm(h, self.emb_norm)[:, None, :]
        for layer, (k_cache, v_cache), (ck, cv) in zip(self.layers, state["cache"], state["cross"]):
            q, k, v = layer.qkv(h).chunk(3, dim=-1)
            k_cache[:, :, position] = self._split(k)[:, :, 0]
            v_cache[:, :, position] = self._split(v)[:, :, 0]
            a = F.scaled_dot_product_attention(
                self._split(q), k_cache[:, :, : position + 1], v_cache[:, :, : position + 1]
            )
            h = self._norm(layer.self_out(a.transpose(1, 2).reshape_as(h)) + h, layer.self_norm)
            a = F.scaled_dot_product_attention(self._split(layer.cross_q(h)), ck, cv, attn_mask=state["mask"])
            h = self._norm(layer.cross_out(a.transpose(1, 2).reshape_as(h)) + h, layer.cross_norm)
            h = self._norm(layer.ffn_out(F.gelu(layer.ffn_in(h))) + h, layer.ffn_norm)
        h = self._norm(F.gelu(self.transform(h[:, 0])), self.head_norm)
        return torch.log_softmax(self.out(h).float(), dim=-1)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int = 64,
        min_new_tokens: int = 0,
        no_repeat_ngram_size: int = 0,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[list[list[int]], list[float]]:
        """Token ids of each reply (without start/end tokens) and each reply's mean log-prob.

        Everything stays on the device; the host syncs once a step (to stop early).
        """
        batch, device = input_ids.shape[0], input_ids.device
        max_new_tokens = min(max_new_tokens, self.max_positions - 1)
        state = self.prepare(input_ids, attention_mask, max_new_tokens)
        seq = torch.full((batch, max_new_tokens + 1), self.pad_id, dtype=torch.long, device=device)
        seq[:, 0] = self.start_id
        tokens = seq[:, 0].clone()
        eos = self._local(self.eos_id)
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        logprob_sum = torch.zeros(batch, device=device)
        counted = torch.zeros(batch, device=device)
        steps = 0
        for position in range(max_new_tokens):
            logp = self.step(state, tokens, position)
            if position < min_new_tokens and eos is not None:
                logp[:, eos] = -math.inf
            if no_repeat_ngram_size and position + 1 >= no_repeat_ngram_size:
                self._ban_repeats(logp, seq[:, : position + 1], no_repeat_ngram_size)
            if temperature and temperature > 0:
                choice = torch.multinomial(torch.softmax(logp / temperature, dim=-1), 1, generator=generator)[:, 0]
            else:
                choice = logp.argmax(dim=-1)
            live = (~done).float()
            logprob_sum += logp.gather(1, choice[:, None])[:, 0].nan_to_num(neginf=-30.0) * live
            counted += live
            chosen = self.vocab_ids[choice] if self.vocab_ids is not None else choice
            tokens = torch.where(done, torch.full_like(chosen, self.pad_id), chosen)
            seq[:, position + 1] = tokens
            done |= tokens == self.eos_id
            steps = position + 1
            if bool(done.all()):
                break
        out = []
        for row in seq[:, 1: steps + 1].tolist():
            out.append(row[: row.index(self.eos_id)] if self.eos_id in row else row)
        return out, (logprob_sum / counted.clamp(min=1)).tolist()

    def _local(self, token_id: int | None) -> int | None:
        """A full-vocabulary id as an index into the (trimmed) output layer."""
        if token_id is None or self.vocab_ids is None:
            return token_id
        hit = (self.vocab_ids == token_id).nonzero()
        return int(hit[0, 0]) if len(hit) else None

    def _ban_repeats(self, logp: torch.Tensor, seq: torch.Tensor, n: int) -> None:
        """Forbid every token that would repeat an n-gram of `seq` (start token included,
        as transformers does), for all rows at once."""
        windows = seq.unfold(1, n, 1)  # [B, W, n]
        match = (windows[:, :, :-1] == seq[:, None, seq.shape[1] - n + 1:]).all(-1)
        banned = windows[:, :, -1]
        if self.vocab_ids is not None:
            banned = self._lookup()[banned]
            match &= banned >= 0
        penalty = torch.zeros_like(logp)
        values = torch.where(match, torch.full_like(match, 1, dtype=logp.dtype) * -math.inf, 0.0)
        penalty.scatter_reduce_(1, banned.clamp(min=0), values, reduce="amin")
        logp += penalty

    def _lookup(self) -> torch.Tensor:
        """Full-vocabulary id -> output-layer index (-1 for ids outside the trimmed vocabulary)."""
        if getattr(self, "_lookup_table", None) is None:
            size = max(int(self.vocab_ids.max()) + 1, self.word.num_embeddings, self.pad_id + 1)
            table = torch.full((size,), -1, dtype=torch.long, device=self.vocab_ids.device)
            table[self.vocab_ids] = torch.arange(len(self.vocab_ids), device=self.vocab_ids.device)
            self._lookup_table = table
        return self._lookup_table

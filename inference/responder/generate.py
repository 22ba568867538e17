"""Serving the responder: load once per process, reply to one message or a batch.

On the CPU a warm-started model decodes through `FastDecoder` (key/value cache, output
layer trimmed to the tenant's reply vocabulary, int8 linear layers). On a GPU the model
runs in bf16/fp16 and concurrent `reply` calls are micro-batched: a small thread
gathers the requests that arrive within a few milliseconds and decodes them together.
Beam search, and models other than the warm start (t5, bart), use transformers'
`generate`.
"""
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from inference.responder import fast
from inference.responder.device import pick_device, pick_dtype
from inference.responder.inputs import MAX_EXAMPLE_CHARS, MAX_KNOWLEDGE, MAX_TURNS, build_source, split_history
from inference.responder.memory import ReplyMemory, sentence_vectors
from inference.responder.model import META_FILE, model_load
from inference.responder.placeholders import Masker, personal_values
from inference.responder.selection import CONSENSUS_K, consensus_pick
from inference.responder.text import detokenize, truecase

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
GENERATED, STORED = "generated", "stored"


@dataclass
class GenerationSettings:
    """Per-tenant decoding settings (Tenant.generation holds overrides of these)."""

    max_new_tokens: int = 64
    min_new_tokens: int = 0
    num_beams: int = 1
    no_repeat_ngram_size: int = 3
    temperature: float = 0.0  # 0: greedy (or beam search); above 0: sampling
    # stored replies to the most similar earlier messages that compete with the generated one by
    # consensus (inference.responder.selection); 0: the generated reply always serves
    candidates: int = CONSENSUS_K

    @classmethod
    def from_dict(cls, values: dict | None) -> "GenerationSettings":
        """Known keys only, clamped to sane ranges: the dict comes from a tenant's admin."""
        values = values or {}
        known = {f.name: f.type for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known or value is None:
                continue
            try:
                kwargs[key] = float(value) if key == "temperature" else int(value)
            except (TypeError, ValueError):
                log.warning("ignoring generation setting %s=%r", key, value)
        s = cls(**kwargs)
        s.max_new_tokens = max(1, min(s.max_new_tokens, 256))
        s.min_new_tokens = max(0, min(s.min_new_tokens, s.max_new_tokens))
        s.num_beams = max(1, min(s.num_beams, 8))
        s.no_repeat_ngram_size = max(0, s.no_repeat_ngram_size)
        s.temperature = max(0.0, min(s.temperature, 2.0))
        s.candidates = max(0, min(s.candidates, 50))
        return s

    def key(self) -> tuple:
        return (self.max_new_tokens, self.min_new_tokens, self.num_beams, self.no_repeat_ngram_size, self.temperature,
                self.candidates)


@dataclass
class Reply:
    text: str  # what serves: the generated reply or the stored one the candidates agree on
    score: float  # confidence 0..1: the geometric mean of the generated tokens' probabilities
    tokens: int  # tokens generated
    latency_ms: float
    source: str = GENERATED  # GENERATED, or STORED: a reply from the memory won the consensus
    generated: str = ""  # the model's own reply, whichever serves
    agreement: float | None = None  # the serving reply's mean ROUGE-L with the other candidates


class Responder:
    """A trained responder ready to reply. Thread-safe: calls are serialised or batched."""

    def __init__(self, model, tokenizer, meta: dict, device: torch.device, quantize: bool | None = None,
                 trim_vocab: bool = True, micro_batch: bool | None = None, max_batch: int = 32,
                 max_wait_ms: float = 5.0):
        self.model, self.tokenizer, self.meta, self.device = model, tokenizer, meta, device
        self.placeholders = meta.get("placeholders", [])
        self.truecase_table = meta.get("truecase", {})
        self.max_source_length = meta.get("max_source_length", 192)
        self.max_turns = meta.get("max_turns", MAX_TURNS)
        self.max_knowledge = meta.get("max_knowledge", MAX_KNOWLEDGE)
        self.memory: ReplyMemory | None = None
        self.examples = meta.get("examples", 0)
        self.max_example_chars = meta.get("max_example_chars", MAX_EXAMPLE_CHARS)
        self.fast = None
        if fast.supports(model):
            vocab = meta.get("decoder_vocab") if trim_vocab else None
            self.fast = fast.FastDecoder(model, vocab)
            if quantize if quantize is not None else device.type == "cpu":
                self.fast.quantize()
        self._suppress: list[int] | None = None
        self._lock = threading.Lock()
        self._batcher = None
        if micro_batch if micro_batch is not None else device.type == "cuda":
            self._batcher = MicroBatcher(self, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto", **kwargs) -> "Responder":
        device = pick_device(device)
        model, tokenizer = model_load(path, device, pick_dtype(device))
        meta_file = Path(path) / META_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        responder = cls(model, tokenizer, meta, device, **kwargs)
        responder.memory = ReplyMemory.load(Path(path))
        return responder

    @property
    def vocab_ids(self) -> list[int] | None:
        return self.meta.get("decoder_vocab")

    def source(self, history: History, intent: str, knowledge: Sequence[str],
               examples: Sequence[str] = ()) -> tuple[str, Masker]:
        masker = Masker(self.placeholders)
        text = build_source(history, intent or "", knowledge or (), self.max_turns, self.max_knowledge, examples,
                            self.max_example_chars)
        return masker.mask_source(text), masker

    def neighbours(self, messages: list[str], k: int) -> list[list[int]]:
        """Reply-memory rows of the `k` training messages most similar to each message (distinct replies)."""
        if self.memory is None or k <= 0:
            return [[] for _ in messages]
        vectors = sentence_vectors(self.model.get_encoder(), self.tokenizer, messages)
        return self.memory.nearest_rows(vectors, k)

    def stored_replies(self, message: str, k: int, knowledge: Sequence[str] = ()) -> list[str]:
        """The stored replies to the `k` training messages most like `message`, fitted to it (see `_fitting`):
        the retrieval answers the consensus weighs."""
        masker = Masker(self.placeholders)
        masker.mask_source(message)
        return self._fitting(self.neighbours([message], k)[0], masker, _allowed([message, *knowledge]))

    def _fitting(self, rows: Sequence[int], masker: Masker, allowed: set[str]) -> list[str]:
        """The memory's replies of `rows` with this message's values in their placeholders. Left out: one
        whose placeholders the message cannot fill ("your order <order 1>" to a message with no order
        number), and one that writes an e-mail, phone or order number that neither the message nor the
        knowledge retrieved for it holds (another visitor's, which the masking missed: "purchase
        00123842"), so a stored reply never tells one visitor about another's order. `allowed`: the
        personal values of the message and its knowledge (`_allowed`)."""
        fitting = []
        for j in rows:
            reply = self.memory.replies[j]
            if any(t in reply and t not in masker.values for t in self.placeholders):
                continue
            text = masker.fill(reply)
            if not personal_values(text) <= allowed:
                continue
            fitting.append(text)
        return fitting

    def chosen(self, reply: Reply, rows: Sequence[int], masker: Masker, sources: Sequence[str]) -> Reply:
        """`reply`, or the stored reply its candidates agree on most (`selection.consensus_pick`), among the
        stored replies that fit this message (`_fitting`; `sources`: the message and its knowledge). A
        generated reply that writes an e-mail, phone or order number from neither does not compete when a
        stored reply fits."""
        allowed = _allowed(sources)
        fillable = self._fitting(rows, masker, allowed)
        if not fillable:
            return reply
        if not personal_values(reply.text) <= allowed:
            index, agreement = consensus_pick(fillable)
            reply.text, reply.source, reply.agreement = fillable[index], STORED, agreement
            return reply
        index, agreement = consensus_pick([reply.text, *fillable])
        reply.agreement = agreement
        if index:
            reply.text, reply.source = fillable[index - 1], STORED
        return reply

    def reply(self, history: History, intent: str = "", knowledge: Sequence[str] = (),
              settings: GenerationSettings | dict | None = None) -> Reply:
        """The reply to the last visitor turn of `history` ((sender, text) pairs, oldest first)."""
        settings = settings if isinstance(settings, GenerationSettings) else GenerationSettings.from_dict(settings)
        if self._batcher is not None:
            return self._batcher.submit((history, intent, knowledge), settings).result()
        return self.reply_batch([(history, intent, knowledge)], settings)[0]

    def reply_batch(self, requests: Sequence[tuple[History, str, Sequence[str]]],
                    settings: GenerationSettings | dict | None = None) -> list[Reply]:
        """Replies to several (history, intent, knowledge) requests, decoded as one batch."""
        settings = settings if isinstance(settings, GenerationSettings) else GenerationSettings.from_dict(settings)
        if not requests:
            return []
        started = time.perf_counter()
        with self._lock, torch.inference_mode():
            messages = [split_history(r[0])[0] for r in requests]
            near = self.neighbours(messages, max(self.examples, settings.candidates))
            examples = [[self.memory.replies[j] for j in n[:self.examples]] for n in near]
            sources, maskers = zip(*(self.source(*r, examples=e) for r, e in zip(requests, examples)))
            batch = self.tokenizer(list(sources), padding=True, truncation=True, max_length=self.max_source_length,
                                   return_tensors="pt").to(self.device)
            if self.fast is not None and settings.num_beams == 1:
                ids, mean_logp = self.fast.generate(
                    batch["input_ids"], batch["attention_mask"], max_new_tokens=settings.max_new_tokens,
                    min_new_tokens=settings.min_new_tokens, no_repeat_ngram_size=settings.no_repeat_ngram_size,
                    temperature=settings.temperature,
                )
            else:
                ids, mean_logp = self._hf_generate(batch, settings)
        replies = []
        for seq, lp, masker, rows, message, request in zip(ids, mean_logp, maskers, near, messages, requests):
            text = self.postprocess(seq, masker)
            reply = Reply(text, round(math.exp(lp), 4) if seq else 0.0, len(seq), 0.0, generated=text)
            if settings.candidates:
                reply = self.chosen(reply, rows[:settings.candidates], masker, [message, *(request[2] or ())])
            replies.append(reply)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        for reply in replies:
            reply.latency_ms = elapsed
        return replies

    def _hf_generate(self, batch, settings: GenerationSettings) -> tuple[list[list[int]], list[float]]:
        """transformers' generate: beam search, and models without a fast path."""
        kwargs = dict(
            max_new_tokens=settings.max_new_tokens, min_new_tokens=settings.min_new_tokens,
            num_beams=settings.num_beams, no_repeat_ngram_size=settings.no_repeat_ngram_size or None,
            do_sample=settings.temperature > 0, output_scores=True, return_dict_in_generate=True,
        )
        if settings.temperature > 0:
            kwargs["temperature"] = settings.temperature
        if self._suppress is None and self.vocab_ids:  # the model was trained to speak only these tokens
            allowed = set(self.vocab_ids)
            self._suppress = [i for i in range(self.model.get_output_embeddings().out_features) if i not in allowed]
        if self._suppress:
            kwargs["suppress_tokens"] = self._suppress
        out = self.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
        config = self.model.generation_config
        special = {config.decoder_start_token_id, config.pad_token_id, config.eos_token_id, config.bos_token_id}
        seqs = [[t for t in row.tolist() if t not in special] for row in out.sequences]
        if getattr(out, "sequences_scores", None) is not None:
            return seqs, out.sequences_scores.float().tolist()
        scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        means = []
        for row, seq in zip(scores, seqs):
            finite = row[torch.isfinite(row)]
            means.append(float(finite[: max(len(seq), 1)].mean()) if len(finite) else -math.inf)
        return seqs, means

    def postprocess(self, token_ids: list[int], masker: Masker) -> str:
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        for token in self.placeholders:  # decoding may glue placeholders to their neighbours
            text = text.replace(token, f" {token} ")
        text = truecase(detokenize(text), self.truecase_table)
        return masker.unmask(text)

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.stop()
            self._batcher = None


def _allowed(sources: Sequence[str]) -> set[str]:
    """The e-mails, phones and order numbers a reply may write: those of the message and its knowledge."""
    return set().union(*(personal_values(s) for s in sources))


class MicroBatcher:
    """Collects concurrent requests for up to `max_wait_ms` (or `max_batch` of them) and
    decodes them as one batch, so GPU throughput grows with load."""

    def __init__(self, responder: Responder, max_batch: int = 32, max_wait_ms: float = 5.0):
        self.responder, self.max_batch, self.max_wait = responder, max_batch, max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="responder-batcher", daemon=True)
        self._thread.start()

    def submit(self, request: tuple, settings: GenerationSettings) -> Future:
        future: Future = Future()
        self._queue.put((request, settings, future))
        return future

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            items = [first]
            deadline = time.perf_counter() + self.max_wait
            while len(items) < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    items.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            groups: dict[tuple, list] = {}
            for item in items:  # one batch per distinct setting
                groups.setdefault(item[1].key(), []).append(item)
            for group in groups.values():
                try:
                    replies = self.responder.reply_batch([i[0] for i in group], group[0][1])
                except Exception as exc:  # noqa: BLE001 - handed to each waiting caller
                    for _, _, future in group:
                        future.set_exception(exc)
                    continue
                for (_, _, future), reply in zip(group, replies):
                    future.set_result(reply)

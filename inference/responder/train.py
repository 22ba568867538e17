"""Fine-tuning the responder on (message, reply) pairs: seeded, with a validation split,
early stopping on validation loss, and metrics saved beside the model."""
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutput

from inference.responder import fast
from inference.responder.device import pick_device
from inference.responder.inputs import MAX_EXAMPLE_CHARS, MAX_KNOWLEDGE, MAX_TURNS, VISITOR, build_source
from inference.responder.memory import ReplyMemory, masked_reply, sentence_vectors
from inference.responder.metrics import reply_metrics
from inference.responder.model import META_FILE, model_build, tokenizer_prepare
from inference.responder.placeholders import Masker
from inference.responder.text import truecase_table

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


@dataclass
class TrainPair:
    """One training example: the visitor's message and the reply it should get, with the
    context the responder sees at serving time."""

    message: str
    reply: str
    intent: str = ""
    knowledge: Sequence[str] = ()
    history: Sequence[tuple[str, str]] = ()
    examples: Sequence[str] = ()  # filled in training from the reply memory

    def source(self, max_turns: int = MAX_TURNS, max_knowledge: int = MAX_KNOWLEDGE,
               max_example_chars: int = MAX_EXAMPLE_CHARS) -> str:
        return build_source([*self.history, (VISITOR, self.message)], self.intent, self.knowledge,
                            max_turns=max_turns, max_knowledge=max_knowledge, examples=self.examples,
                            max_example_chars=max_example_chars)


PLAN_AFTER_STEPS = 10  # steps timed before a time-capped run fits its learning-rate schedule to the cap


class SchedulePlan:
    """Linear warm-up then linear decay to zero at `total` steps, which a time cap may shorten once the
    speed is known: a run stopped by the clock early in a schedule planned for 40 epochs would end at nearly
    its peak learning rate, never having annealed."""

    def __init__(self, total: int, warmup_ratio: float):
        self.total, self.warmup_ratio = total, warmup_ratio
        self.warmup = int(total * warmup_ratio)

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))

    def fit(self, step: int, elapsed: float, budget: float, steps_per_epoch: int) -> None:
        """After `step` steps in `elapsed` s, end the schedule where `budget` s of training end (less one
        epoch's validation, about a tenth of an epoch's steps), if that comes before its planned end."""
        per_step = elapsed / max(step, 1)
        fits = int(budget / per_step) - max(1, steps_per_epoch // 10)
        if step < fits < self.total:
            self.total = fits
            self.warmup = min(self.warmup, int(fits * self.warmup_ratio))


@dataclass
class ResponderTrainConfig:
    base_path: str = ""  # a BERT-like encoder to warm-start from, or a seq2seq checkpoint
    decoder_layers: int | None = 3  # warm start only: decoder depth (None: as deep as the encoder)
    epochs: int = 40
    batch_size: int = 16
    lr: float = 3e-4
    fresh_lr_scale: float = 5.0  # learning-rate multiplier of the weights a warm start adds
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    label_smoothing: float = 0.1
    max_source_length: int = 256
    max_target_length: int = 96
    max_turns: int = MAX_TURNS
    max_knowledge: int = MAX_KNOWLEDGE
    examples: int = 0  # replies of the most similar other training messages shown in the source (0: none)
    max_example_chars: int = MAX_EXAMPLE_CHARS  # an example reply is clipped to this many characters
    val_fraction: float = 0.1
    patience: int = 5  # epochs without a better validation loss before stopping
    max_train_steps: int | None = None  # a hard cap (smoke runs, tests)
    train_encoder: bool = False  # fine-tune the encoder too (about 3x the compute of a step)
    train_encoder_layers: int = 0  # with a frozen encoder: fine-tune only its top N layers (0: none)
    max_train_seconds: float | None = None  # stop training after this long (the epoch ends, is validated)
    trim_vocab: bool = True  # output layer restricted to the tokens of replies and knowledge
    eval_generate: bool = True  # also generate the validation replies for ROUGE-L/BLEU
    device: str = "auto"  # auto: CUDA when present
    seed: int = 13
    threads: int = 0  # torch threads; 0 leaves torch's default
    extra: dict = field(default_factory=dict)


def _is_fresh(name: str) -> bool:
    """Weights a warm start does not take from the base: cross-attention and the LM head."""
    return "crossattention" in name or "cls.predictions" in name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_validation(pairs: Sequence[TrainPair], fraction: float, seed: int) -> tuple[list, list]:
    """A seeded split; validation stays empty when there is too little data to spare."""
    pairs = list(pairs)
    n_val = int(round(len(pairs) * fraction)) if len(pairs) >= 10 else 0
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    val = set(order[:n_val])
    return [p for i, p in enumerate(pairs) if i not in val], [p for i, p in enumerate(pairs) if i in val]


def with_examples(train: list[TrainPair], val: list[TrainPair], model, tokenizer, placeholders: list[str],
                  k: int) -> tuple[list[TrainPair], list[TrainPair]]:
    """Each pair with the replies of its most similar *other* training messages, as serving
    will find them in the reply memory (a pair never sees its own reply)."""
    encoder = model.get_encoder()
    train_vectors = sentence_vectors(encoder, tokenizer, [p.message for p in train])
    memory = ReplyMemory([p.message for p in train],
                         [masked_reply(p.message, p.reply, placeholders) for p in train], train_vectors)
    same_message: dict[str, set[int]] = {}
    for i, pair in enumerate(train):
        same_message.setdefault(pair.message.strip().lower(), set()).add(i)
    exclude = [same_message[p.message.strip().lower()] | {i} for i, p in enumerate(train)]
    train = [replace(p, examples=e) for p, e in zip(train, memory.nearest(train_vectors, k, exclude))]
    if val:
        val_vectors = sentence_vectors(encoder, tokenizer, [p.message for p in val])
        exclude = [same_message.get(p.message.strip().lower(), set()) for p in val]
        val = [replace(p, examples=e) for p, e in zip(val, memory.nearest(val_vectors, k, exclude))]
    return train, val


def encode_pairs(pairs: Sequence[TrainPair], tokenizer, placeholders: list[str], config: ResponderTrainConfig) -> list:
    """(source ids, label ids) per pair, with the message's values masked to placeholders."""
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    rows = []
    for pair in pairs:
        masker = Masker(placeholders)
        source = masker.mask_source(pair.source(config.max_turns, config.max_knowledge, config.max_example_chars))
        target = masker.mask_target(pair.reply)
        src = tokenizer(source, truncation=True, max_length=config.max_source_length)["input_ids"]
        tgt = tokenizer(target, add_special_tokens=False, truncation=True,
                        max_length=config.max_target_length - 1)["input_ids"]
        rows.append((src, tgt + [eos]))
    return rows


def _collate(rows: list, pad_id: int, device: torch.device) -> dict:
    src_len = max(len(s) for s, _ in rows)
    tgt_len = max(len(t) for _, t in rows)
    input_ids = torch.full((len(rows), src_len), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), src_len), dtype=torch.long)
    labels = torch.full((len(rows), tgt_len), -100, dtype=torch.long)
    for i, (s, t) in enumerate(rows):
        input_ids[i, :len(s)] = torch.tensor(s)
        attention[i, :len(s)] = 1
        labels[i, :len(t)] = torch.tensor(t)
    return {"input_ids": input_ids.to(device), "attention_mask": attention.to(device), "labels": labels.to(device)}


class _Objective:
    """Cross-entropy of the reply tokens, over the decoder vocabulary when it is trimmed.

    With a frozen encoder the sources are encoded once (the encoder is most of the
    compute on CPU); with a BERT decoder the output layer is restricted to the tokens
    replies use, as serving does, which also makes each step several times cheaper.
    """

    def __init__(self, model, vocab_ids: list[int] | None, freeze_encoder: bool, label_smoothing: float,
                 encoder_top: int = 0):
        self.model, self.smoothing = model, label_smoothing
        self.start = model.generation_config.decoder_start_token_id
        self.pad = model.config.pad_token_id
        self.trimmed = vocab_ids is not None and fast.supports(model)
        if freeze_encoder:
            model.get_encoder().requires_grad_(False)
        layers = _encoder_layers(model) if freeze_encoder and encoder_top > 0 else []
        for layer in layers[-encoder_top:] if layers else []:
            layer.requires_grad_(True)  # only the top layers learn; the encoder runs every step
        self.freeze_encoder = freeze_encoder and not layers
        if self.trimmed:
            device = model.device
            self.index = torch.tensor(vocab_ids, dtype=torch.long, device=device)
            size = model.decoder.config.vocab_size
            self.lookup = torch.full((size,), -100, dtype=torch.long, device=device)
            self.lookup[self.index] = torch.arange(len(vocab_ids), device=device)

    @torch.no_grad()
    def encode(self, batch: dict) -> None:
        """Cache the frozen encoder's output in the batch."""
        if self.freeze_encoder:
            self.model.get_encoder().eval()
            batch["memory"] = self.model.get_encoder()(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state

    def __call__(self, batch: dict, smoothing: float | None = None) -> torch.Tensor:
        model, labels = self.model, batch["labels"]
        decoder_input = torch.cat([torch.full_like(labels[:, :1], self.start), labels[:, :-1]], dim=1)
        decoder_input = decoder_input.masked_fill(decoder_input == -100, self.pad)
        memory = batch.get("memory")
        if memory is None:
            memory = model.get_encoder()(input_ids=batch["input_ids"],
                                         attention_mask=batch["attention_mask"]).last_hidden_state
        if self.trimmed:
            hidden = model.decoder.bert(input_ids=decoder_input, encoder_hidden_states=memory,
                                        encoder_attention_mask=batch["attention_mask"]).last_hidden_state
            head = model.decoder.cls.predictions
            hidden = head.transform(hidden)
            logits = torch.nn.functional.linear(hidden, head.decoder.weight[self.index], head.decoder.bias[self.index])
            labels = torch.where(labels == -100, labels, self.lookup[labels.clamp(min=0)])
        else:
            logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                           attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input).logits
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100,
            label_smoothing=self.smoothing if smoothing is None else smoothing,
        )


def _encoder_layers(model) -> list:
    """The encoder's transformer layers (BERT-like encoders; empty when the layout is unknown)."""
    stack = getattr(getattr(model.get_encoder(), "encoder", None), "layer", None)
    return list(stack) if stack is not None else []


def _batches(rows: list, batch_size: int, pad_id: int, device: torch.device, objective: "_Objective",
             order: list[int] | None = None) -> list[dict]:
    order = order if order is not None else list(range(len(rows)))
    batches = []
    for start in range(0, len(order), batch_size):
        batch = _collate([rows[i] for i in order[start:start + batch_size]], pad_id, device)
        objective.encode(batch)
        batches.append(batch)
    return batches


@torch.no_grad()
def _eval_loss(model, batches: list[dict], objective: "_Objective") -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        n = int((batch["labels"] != -100).sum())
        total += float(objective(batch, smoothing=0.0)) * n
        count += n
    return total / max(count, 1)


def decoder_vocabulary(rows: list, pairs: Sequence[TrainPair], tokenizer, placeholders: list[str]) -> list[int]:
    """The tokens the replies (and the knowledge they draw on) use: the fast path's output layer."""
    ids = {t for _, tgt in rows for t in tgt}
    for pair in pairs:
        for text in pair.knowledge:
            ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    ids.update(tokenizer.convert_tokens_to_ids(placeholders))
    ids.update(i for i in (tokenizer.sep_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) if i is not None)
    return sorted(ids)


def train_responder(
    pairs: Sequence[TrainPair],
    config: ResponderTrainConfig,
    out_dir: str | Path,
    progress: bool = True,
) -> dict:
    """Fine-tune, keep the epoch with the best validation loss, save model + metrics to `out_dir`."""
    if not config.base_path:
        raise ValueError("ResponderTrainConfig.base_path is required")
    pairs = [p for p in pairs if p.message.strip() and p.reply.strip()]
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 (message, reply) pairs to train a responder, got {len(pairs)}")
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    started = time.perf_counter()

    train_pairs, val_pairs = split_validation(pairs, config.val_fraction, config.seed)
    device = pick_device(config.device)
    model, tokenizer = model_build(config.base_path, config.decoder_layers)
    model.to(device)
    placeholders = tokenizer_prepare(tokenizer)
    if config.examples:
        train_pairs, val_pairs = with_examples(train_pairs, val_pairs, model, tokenizer, placeholders, config.examples)
    train_rows = encode_pairs(train_pairs, tokenizer, placeholders, config)
    val_rows = encode_pairs(val_pairs, tokenizer, placeholders, config)
    pad_id = tokenizer.pad_token_id
    vocab_ids = decoder_vocabulary(train_rows + val_rows, pairs, tokenizer, placeholders)
    objective = _Objective(model, vocab_ids if config.trim_vocab else None, not config.train_encoder,
                           config.label_smoothing, config.train_encoder_layers)

    steps_per_epoch = math.ceil(len(train_rows) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_train_steps:
        total_steps = min(total_steps, config.max_train_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    fresh = [p for n, p in model.named_parameters() if p.requires_grad and _is_fresh(n)]
    fresh_ids = {id(p) for p in fresh}
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in trainable if id(p) not in fresh_ids]},
         {"params": fresh, "lr": config.lr * config.fresh_lr_scale}],
        lr=config.lr, weight_decay=config.weight_decay,
    )
    plan = SchedulePlan(total_steps, config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan.factor)

    def out_of_time() -> bool:
        return bool(config.max_train_seconds) and time.perf_counter() - started > config.max_train_seconds

    rng = random.Random(config.seed)
    # With a frozen encoder, every source is encoded once here, not once per epoch.
    by_length = sorted(range(len(train_rows)), key=lambda i: len(train_rows[i][0]))
    train_batches = _batches(train_rows, config.batch_size, pad_id, device, objective, by_length)
    val_batches = _batches(val_rows, config.batch_size, pad_id, device, objective)
    best_loss, best_state, best_epoch, stale, step = math.inf, None, 0, 0, 0
    history = []
    bar = tqdm(total=total_steps, desc="train responder", disable=not progress, unit="step")
    loop_started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        if objective.freeze_encoder:
            model.get_encoder().eval()
        rng.shuffle(train_batches)
        train_loss, seen = 0.0, 0
        for batch in train_batches:
            loss = objective(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            train_loss += loss.item()
            seen += 1
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
            if step == PLAN_AFTER_STEPS and config.max_train_seconds:
                plan.fit(step, time.perf_counter() - loop_started,
                         config.max_train_seconds - (loop_started - started), steps_per_epoch)
                bar.total = plan.total  # the progress shown counts to where the run will end
            if step >= plan.total or out_of_time():
                break
        train_loss /= max(seen, 1)
        val_loss = _eval_loss(model, val_batches, objective) if val_batches else train_loss
        history.append({"epoch": epoch, "train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4)})
        log.info("epoch %d train loss %.4f val loss %.4f", epoch, train_loss, val_loss)
        if val_loss < best_loss - 1e-4:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if stale >= config.patience or step >= plan.total or out_of_time():
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval().to("cpu")

    meta = {
        "format": 1,
        "base_path": str(config.base_path),
        "placeholders": placeholders,
        "decoder_vocab": vocab_ids if config.trim_vocab else None,
        "truecase": truecase_table([p.reply for p in pairs] + [k for p in pairs for k in p.knowledge]),
        "max_source_length": config.max_source_length,
        "max_turns": config.max_turns,
        "max_knowledge": config.max_knowledge,
        "examples": config.examples,
        "max_example_chars": config.max_example_chars,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    # The reply memory: examples in the source (`examples`) and the stored candidates serving weighs
    # against the generated reply (inference.responder.selection).
    everything = train_pairs + val_pairs
    ReplyMemory(
        [p.message for p in everything],
        [masked_reply(p.message, p.reply, placeholders) for p in everything],
        sentence_vectors(model.get_encoder(), tokenizer, [p.message for p in everything]),
    ).save(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / META_FILE).write_text(json.dumps(meta))

    metrics = {
        "pairs": len(pairs),
        "train_pairs": len(train_pairs),
        "val_pairs": len(val_pairs),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "steps": step,
        "val_loss": round(best_loss, 4) if val_rows else None,
        "train_seconds": round(time.perf_counter() - started, 1),
        "config": {k: v for k, v in asdict(config).items() if k != "extra"},
        "history": history,
    }
    if val_pairs and config.eval_generate:
        from inference.responder.generate import Responder

        responder = Responder.load(out_dir, device="cpu")
        replies = responder.reply_batch([(list(p.history) + [(VISITOR, p.message)], p.intent, list(p.knowledge))
                                         for p in val_pairs])
        metrics["val"] = reply_metrics([r.text for r in replies], [p.reply for p in val_pairs])
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics

"""Building and loading the responder's seq2seq model.

A base is either a seq2seq checkpoint (t5, bart, or a responder trained here), loaded as
it is, or a BERT-like encoder (the packaged MiniLM by default), from which an
encoder-decoder is warm-started: the decoder copies the encoder's first layers and
learns its cross-attention during fine-tuning.
"""
import logging
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BertLMHeadModel,
    EncoderDecoderModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from inference.responder.placeholders import placeholder_tokens

META_FILE = "responder.json"  # beside the weights: the responder's settings and training figures

log = logging.getLogger(__name__)


def _quiet_load(fn, *args, **kwargs):
    """Warm-starting reports every fresh cross-attention weight; that is expected here."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return fn(*args, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def is_seq2seq(path: str | Path) -> bool:
    return bool(getattr(AutoConfig.from_pretrained(str(path)), "is_encoder_decoder", False))


def uses_unused_tokens(tokenizer: PreTrainedTokenizerBase) -> bool:
    """BERT vocabularies have [unusedN] rows that placeholders can take without resizing."""
    return "[unused10]" in tokenizer.get_vocab()


def tokenizer_prepare(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Register the placeholder tokens so they are never split; returns them."""
    tokens = placeholder_tokens(uses_unused_tokens(tokenizer))
    tokenizer.add_tokens(tokens)
    return tokens


def _bert_special_ids(model: EncoderDecoderModel, tokenizer: PreTrainedTokenizerBase) -> None:
    ids = {
        "decoder_start_token_id": tokenizer.cls_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for name, value in ids.items():
        setattr(model.config, name, value)
        setattr(model.generation_config, name, value)


def warm_start(
    encoder_path: str | Path, decoder_layers: int | None = None
) -> tuple[EncoderDecoderModel, PreTrainedTokenizerBase]:
    """An encoder-decoder whose encoder and decoder both start from `encoder_path`.

    `decoder_layers` keeps only the first layers in the decoder: decoding runs once per
    token, so a shallower decoder is the biggest speed lever.
    """
    path = str(encoder_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = _quiet_load(AutoModel.from_pretrained, path, add_pooling_layer=False)
    config = AutoConfig.from_pretrained(path)
    config.is_decoder = True
    config.add_cross_attention = True
    if decoder_layers:
        config.num_hidden_layers = min(decoder_layers, config.num_hidden_layers)
    decoder = _quiet_load(BertLMHeadModel.from_pretrained, path, config=config)
    _cross_attention_from_self(decoder)
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    _bert_special_ids(model, tokenizer)
    tokenizer_prepare(tokenizer)
    _resize_for(model, tokenizer)
    return model, tokenizer


def _cross_attention_from_self(decoder: BertLMHeadModel) -> None:
    """Start each layer's cross-attention as a copy of its self-attention: the encoder's
    states live in the same space as the pretrained layers expect, so the decoder reads
    the source from the first step instead of learning to from random weights."""
    with torch.no_grad():
        for layer in decoder.bert.encoder.layer:
            cross, own = layer.crossattention, layer.attention
            for name in ("query", "key", "value"):
                getattr(cross.self, name).load_state_dict(getattr(own.self, name).state_dict())
            cross.output.load_state_dict(own.output.state_dict())


def _resize_for(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Grow the embeddings when the placeholders were new tokens (non-BERT vocabularies)."""
    if isinstance(model, EncoderDecoderModel):
        for part in (model.encoder, model.decoder):
            if len(tokenizer) > part.get_input_embeddings().num_embeddings:
                part.resize_token_embeddings(len(tokenizer))
        model.config.decoder.vocab_size = model.decoder.config.vocab_size
    elif len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))


def model_build(
    base_path: str | Path, decoder_layers: int | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model to fine-tune from a base: a seq2seq checkpoint as it is, else a warm start."""
    if is_seq2seq(base_path):
        model, tokenizer = model_load(base_path)
        tokenizer_prepare(tokenizer)
        _resize_for(model, tokenizer)
        return model, tokenizer
    return warm_start(base_path, decoder_layers)


def model_load(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A seq2seq checkpoint (a trained responder, t5, bart…) ready for inference."""
    path = str(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = AutoConfig.from_pretrained(path)
    cls = EncoderDecoderModel if config.model_type == "encoder-decoder" else AutoModelForSeq2SeqLM
    model = _quiet_load(cls.from_pretrained, path)
    if isinstance(model, EncoderDecoderModel) and model.generation_config.decoder_start_token_id is None:
        _bert_special_ids(model, tokenizer)
    return model.to(device=device, dtype=dtype).eval(), tokenizer

"""Build any HF encoder-decoder from a config name, and the loss the issue model trains on.

Why: 000 §4.2 compares T5, BART and Pegasus (`AutoModelForSeq2SeqLM`); offline we have only an
encoder (the packaged MiniLM), which a transformers `EncoderDecoderModel` warm-starts on both
sides (Rothe et al. 2020). One builder serves both, so the LightningModule, the benchmark and
the serving loader never branch on the architecture themselves.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from feedback_nlp.core.model_factory import load_hf_config, load_model, load_tokenizer, resolve_name_or_path

ARCHITECTURES = ("auto", "seq2seq", "encoder-decoder")


def detect_architecture(name: str) -> str:
    """`seq2seq` for an encoder-decoder checkpoint (T5/BART/Pegasus/exported models), else
    `encoder-decoder` (an encoder-only checkpoint, warm-started on both sides)."""
    return "seq2seq" if getattr(load_hf_config(name), "is_encoder_decoder", False) else "encoder-decoder"


def _set_special_ids(model: Any, tokenizer: Any) -> None:
    """A warm-started BERT pair starts decoding at [CLS] and stops at [SEP]; both configs must know."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = start, tokenizer.pad_token_id, eos
    model.generation_config.bos_token_id = None


def init_cross_attention_from_self(model: Any) -> int:
    """Copy each decoder layer's self-attention weights into its new cross-attention.

    Why: warm-started cross-attention is random (Rothe et al. 2020) and takes many steps before
    the decoder reads the input; starting from the layer's own attention projections puts
    queries and keys in a shared space at step one. Returns the number of layers touched.
    """
    n = 0
    for module in model.decoder.modules():
        if hasattr(module, "crossattention") and hasattr(module, "attention"):
            module.crossattention.load_state_dict(module.attention.state_dict())
            n += 1
    return n


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def build_seq2seq(
    pretrained: str,
    architecture: str = "auto",
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
    cross_attention_init: str = "random",
) -> tuple[Any, Any]:
    """(model, tokenizer) for a config name; see module docstring."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"model.architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    if cross_attention_init not in ("random", "self_attention"):
        raise ValueError(f"model.cross_attention_init must be random or self_attention, got {cross_attention_init!r}")
    tokenizer = load_tokenizer(pretrained)
    if architecture == "auto":
        architecture = detect_architecture(pretrained)
    if architecture == "seq2seq":
        if encoder_layers or decoder_layers:
            raise ValueError("model.encoder_layers/decoder_layers only apply to architecture=encoder-decoder")
        return load_model("AutoModelForSeq2SeqLM", pretrained), tokenizer
    from transformers import EncoderDecoderModel

    path = resolve_name_or_path(pretrained)
    kwargs = {}
    if encoder_layers:
        kwargs["encoder_num_hidden_layers"] = encoder_layers
    if decoder_layers:
        kwargs["decoder_num_hidden_layers"] = decoder_layers
    with _quiet_transformers():  # its load report lists every new cross-attention weight: expected here
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path, **kwargs)
    _set_special_ids(model, tokenizer)
    if cross_attention_init == "self_attention":
        init_cross_attention_from_self(model)
    return model, tokenizer


# Parameters a warm-started BERT decoder gets from scratch (Rothe et al. 2020): cross-attention and
# the LM head's transform; they may learn faster than the pretrained rest (`model.new_params_lr`).
NEW_PARAM_MARKERS = ("crossattention.", "cls.predictions.transform.", "cls.predictions.bias")


def new_parameter_names(model: Any) -> set[str]:
    """Names of the parameters an EncoderDecoderModel warm start initialised randomly (none for T5 & co)."""
    if type(model).__name__ != "EncoderDecoderModel":
        return set()
    return {n for n, _ in model.named_parameters() if any(m in n for m in NEW_PARAM_MARKERS)}


def add_tokens(model: Any, tokenizer: Any, tokens: Sequence[str]) -> list[str]:
    """Add the tokens the tokenizer lacks as special tokens (App. A sentinels) and resize the model."""
    unk = tokenizer.unk_token_id
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab or vocab[t] == unk]
    if not missing:
        return []
    tokenizer.add_tokens(missing, special_tokens=True)
    size = len(tokenizer)
    if type(model).__name__ == "EncoderDecoderModel":
        model.encoder.resize_token_embeddings(size)
        model.decoder.resize_token_embeddings(size)
    else:
        model.resize_token_embeddings(size)
    return missing


def freeze_word_embeddings(model: Any) -> int:
    """Freeze the word embeddings (and the output projection tied to them); returns #params frozen.

    Why: on CPU the two 30k x d embedding matrices dominate the backward and optimizer cost of a
    small warm-started model while changing little in a short fine-tune.
    """
    seen, n = set(), 0
    parts = [model.get_input_embeddings(), model.get_encoder().get_input_embeddings()]
    decoder = getattr(model, "decoder", None) or (model.get_decoder() if hasattr(model, "get_decoder") else None)
    if decoder is not None and hasattr(decoder, "get_input_embeddings"):
        parts.append(decoder.get_input_embeddings())
    for module in parts:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                p.requires_grad_(False)
                n += p.numel()
    return n


def seq2seq_loss(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    label_smoothing: float = 0.0,
    row_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean token loss, per-row loss sums, per-row token counts) under teacher forcing.

    Per-row sums let the module report one loss per task (coarse, granular, auxiliaries) from a
    mixed batch without a second forward pass; the mean is HF's usual token-averaged loss.
    `row_weights` (one per row) makes it a weighted token mean, sum(w * row sum) / sum(w * row
    count): a task weighted 2 counts each of its tokens twice, and the loss keeps its scale, so
    the learning rate means the same. `label_smoothing` is torch's (HF's `label_smoothing_factor`).
    """
    if hasattr(model, "prepare_decoder_input_ids_from_labels"):
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
    else:  # pragma: no cover - every seq2seq family we configure has the method
        logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
    token_loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=-100,
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(labels.shape)
    row_sum = token_loss.sum(dim=1)
    row_count = (labels != -100).sum(dim=1)
    if row_weights is None:
        return row_sum.sum() / row_count.sum().clamp(min=1), row_sum.detach(), row_count
    w = row_weights.to(row_sum.dtype)
    mean = (w * row_sum).sum() / (w * row_count).sum().clamp(min=1e-12)
    return mean, row_sum.detach(), row_count

"""Decoding the multi-level issue model (000 §3.2, App. C) and its graphs for ONNX.

Why here: training-time validation, the serving predictor and the ONNX export decode with the
same settings (beam 2, length penalty 2.5 from the exported generation config) and parse the
generated text into issue sets the same way; the model itself is any HF encoder-decoder.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn


def generation_kwargs(config: Any) -> dict[str, Any]:
    """The decoding settings taken from a generation config (what the export also carries)."""
    out = {
        "num_beams": config.num_beams or 1,
        "length_penalty": config.length_penalty,
        "max_new_tokens": config.max_new_tokens,
    }
    if config.no_repeat_ngram_size:
        out["no_repeat_ngram_size"] = config.no_repeat_ngram_size
    if out["num_beams"] > 1:
        out["early_stopping"] = True
    return out


@torch.no_grad()
def generate_issue_sets(
    model: Any, tokenizer: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, kwargs: Mapping[str, Any]
) -> list[list[str]]:
    """HF `generate` -> text -> issue set per row (split on commas, trimmed, de-duplicated)."""
    # deferred: the metrics package's __init__ imports torchmetrics, which serving otherwise never needs
    from feedback_nlp.core.issue_sets import parse_issues

    was_training = model.training
    model.eval()
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    if was_training:
        model.train()
    return [parse_issues(t) for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


class Seq2SeqEncoder(nn.Module):
    """token ids -> encoder states: the first ONNX graph of the issue model."""

    def __init__(self, model: Any):
        super().__init__()
        self.encoder = model.get_encoder()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states: torch.Tensor = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return states


def _flat(cache: Any, cross: bool) -> list[torch.Tensor]:
    """An EncoderDecoderCache as flat tensors: per layer self k, self v (, cross k, cross v)."""
    out: list[torch.Tensor] = []
    for i, layer in enumerate(cache.self_attention_cache.layers):
        out += [layer.keys, layer.values]
        if cross:
            c = cache.cross_attention_cache.layers[i]
            out += [c.keys, c.values]
    return out


def past_names(n_layers: int, cross: bool = True) -> list[str]:
    kinds = ("self_k", "self_v", "cross_k", "cross_v") if cross else ("self_k", "self_v")
    return [f"{kind}.{i}" for i in range(n_layers) for kind in kinds]


class Seq2SeqDecoderInit(nn.Module):
    """First decoder call: (decoder ids, encoder states, source mask) -> logits + the key/value
    cache (self-attention of the ids so far, cross-attention of the source). The second ONNX graph."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(
        self, decoder_input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        out = self.model(
            encoder_outputs=(encoder_hidden_states,),
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=True,
            past_key_values=EncoderDecoderCache(DynamicCache(), DynamicCache()),
        )
        return (out.logits, *_flat(out.past_key_values, cross=True))


class Seq2SeqDecoderWithPast(nn.Module):
    """Every later step: one new token per row + the cache -> logits + the grown self-attention
    cache (the cross-attention cache does not change). The third ONNX graph; with it a runtime
    decodes in linear time, as `generate` does with `use_cache=True`."""

    def __init__(self, model: Any, n_layers: int):
        super().__init__()
        self.model, self.n_layers = model, n_layers

    def forward(
        self,
        decoder_input_ids: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        layers = range(self.n_layers)
        cache = EncoderDecoderCache(
            DynamicCache(ddp_cache_data=[(past[4 * i], past[4 * i + 1]) for i in layers]),
            DynamicCache(ddp_cache_data=[(past[4 * i + 2], past[4 * i + 3]) for i in layers]),
        )
        out = self.model(
            encoder_outputs=(encoder_hidden_states,),
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=True,
            past_key_values=cache,
        )
        return (out.logits, *_flat(out.past_key_values, cross=False))

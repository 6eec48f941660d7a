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
    out = {"num_beams": config.num_beams or 1, "length_penalty": config.length_penalty,
           "max_new_tokens": config.max_new_tokens}
    if config.no_repeat_ngram_size:
        out["no_repeat_ngram_size"] = config.no_repeat_ngram_size
    if out["num_beams"] > 1:
        out["early_stopping"] = True
    return out


@torch.no_grad()
def generate_issue_sets(model: Any, tokenizer: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        kwargs: Mapping[str, Any]) -> list[list[str]]:
    """HF `generate` -> text -> issue set per row (split on commas, trimmed, de-duplicated)."""
    # deferred: the metrics package's __init__ imports torchmetrics, which serving otherwise never needs
    from feedback_nlp.metrics.issue_sets import parse_issues
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
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Seq2SeqDecoderStep(nn.Module):
    """(decoder ids so far, encoder states, source mask) -> next-token logits of every position.

    The second ONNX graph; a runtime decodes by calling it once per generated token. It has no
    key/value cache input, so each step re-reads the prefix (quadratic in output length, which
    stays short here: issue lists of <= 64 tokens).
    """

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, decoder_input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(encoder_outputs=(encoder_hidden_states,), attention_mask=attention_mask,
                         decoder_input_ids=decoder_input_ids, use_cache=False)
        return out.logits

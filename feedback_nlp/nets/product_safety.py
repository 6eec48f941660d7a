"""The product-safety network (001 §3.1): encoder -> last-layer [CLS] -> one linear layer.

Why here: training (lightning_modules/product_safety.py, which keeps `encoder`/`head` as its own
attributes so existing checkpoints load), the serving predictor and the ONNX graph all compute
the logits with `cls_logits`; only dropout differs, and it is off in eval mode.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from feedback_nlp.nets.pooling import cls_pool

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cls_logits(
    encoder: nn.Module, head: nn.Module, batch: Mapping[str, Any], dropout: nn.Module | None = None
) -> torch.Tensor:
    """001 §3.1: last-layer [CLS] vector -> linear layer."""
    out = encoder(**{k: batch[k] for k in ENCODER_INPUTS if k in batch})
    cls = cls_pool(out.last_hidden_state)
    logits: torch.Tensor = head(dropout(cls) if dropout is not None else cls)  # a module call is typed Any
    return logits


class SafetyProbability(nn.Module):
    """P(product safety) from token ids: the graph the ONNX export and the ONNX backend share."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = cls_logits(self.encoder, self.head, {"input_ids": input_ids, "attention_mask": attention_mask})
        return torch.softmax(logits.float(), dim=-1)[:, 1]

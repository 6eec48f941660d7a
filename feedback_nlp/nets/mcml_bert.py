"""The MCML-BERT baseline network (000 §5.1): encoder -> pooled vector -> one sigmoid per label.

Why a plain module: the LightningModule trains it with binary cross-entropy; serving and the
ONNX graph read the same probabilities and turn them into label sets with `predicted_label_sets`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from feedback_nlp.nets.pooling import check_pooling, pool


class McmlNet(nn.Module):
    def __init__(self, encoder: Any, n_labels: int, pooling: str = "cls", dropout: float = 0.1):
        super().__init__()
        self.encoder, self.pooling = encoder, check_pooling(pooling)
        # Sequential keeps the parameter names (head.1.weight) of checkpoints written before nets/
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.config.hidden_size, n_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits: torch.Tensor = self.head(pool(hidden, attention_mask, self.pooling))  # a module call is typed Any
        return logits


class McmlProbabilities(nn.Module):
    """Sigmoid probabilities from token ids: the graph of the ONNX export."""

    def __init__(self, net: McmlNet):
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(input_ids, attention_mask).float())


def predicted_label_sets(
    probs: torch.Tensor, labels: Sequence[str], threshold: float = 0.5, at_least_one: bool = True
) -> list[list[str]]:
    """Labels whose probability passes `threshold`, most probable first; with `at_least_one`, the
    top label when none passes (every feedback in the data names at least one issue)."""
    out = []
    for row in torch.as_tensor(probs):
        order = torch.argsort(row, descending=True).tolist()
        chosen = [labels[j] for j in order if row[j] >= threshold]
        if not chosen and at_least_one and order:
            chosen = [labels[order[0]]]
        out.append(chosen)
    return out

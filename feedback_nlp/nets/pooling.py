"""Sentence vectors from token states: [CLS] or masked mean (the one definition of each).

Why: 001 §3.1 reads the last layer's [CLS] vector; sentence-transformers models such as
all-MiniLM-L6-v2 were trained for the mean over real tokens. SeaCat (002 §2.2), the MCML
baseline and the safety head all pick one of these two, so both live here once.
"""

from __future__ import annotations

import torch

POOLINGS = ("mean", "cls")


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The first token's state (BERT's [CLS])."""
    return hidden[:, 0]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens only; an all-padding row gives zeros, not NaN."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return cls_pool(hidden, attention_mask)
    if pooling == "mean":
        return mean_pool(hidden, attention_mask)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return pooling

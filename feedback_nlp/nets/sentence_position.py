"""002 §2.3: sentence position embedding, indexed by the offset from the agent's first sentence.

Why: the customer's main question sits in the first few sentences around the agent's first
reply (002 §2.2), so SeaCat adds to each sentence embedding a fixed sinusoidal embedding of
its position *relative to that reply* rather than of its absolute index. Offsets in [-S, +S]
are shifted by S (S = max sentences) to the non-negative range [0, 2S]; index S marks the
agent's first sentence (002 §2.4: S = 64, indices 0..128). The indices are a property of the
transcript and are computed with its features (`feedback_nlp.datamodules.seacat.offset_positions`).
"""

from __future__ import annotations

import torch
from torch import nn


def sinusoidal_table(n_positions: int, dim: int) -> torch.Tensor:
    """002 eqs. 2-3: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d))."""
    p = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)
    angle = p / torch.pow(10000.0, two_i / dim)
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table.float()


class SentencePositionEmbedding(nn.Module):
    """Fixed (not learned) lookup of the sinusoidal table for positions 0..2S."""

    def __init__(self, max_sentences: int, dim: int):
        super().__init__()
        self.max_sentences = max_sentences
        self.table: torch.Tensor
        self.register_buffer("table", sinusoidal_table(2 * max_sentences + 1, dim), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table[positions]

"""The per-level metric bundle (ROUGE-1/2 F, SimCSE P/R/F1) and the sentence embedder behind it.

Why: 000 §4.3 scores L-Coarse and L-Granular issues separately with the same four numbers, and
the MCML-BERT baseline (000 §5.1, Table 2) must go through exactly the same code so one table
compares them. The embedder (feedback_nlp/core/embeddings.py) loads lazily and is deliberately not an
`nn.Module` attribute of the metric, so its weights never enter a task checkpoint.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from feedback_nlp.core.embeddings import SentenceEmbedder
from feedback_nlp.metrics.rouge import RougeF
from feedback_nlp.metrics.simcse import SimCSEScore


class LevelMetrics(nn.Module):
    """ROUGE-1 F, ROUGE-2 F and SimCSE P/R/F1 for one issue level; each a DDP-syncing Metric."""

    def __init__(self, embed: SentenceEmbedder, threshold: float = 0.7, use_stemmer: bool = False):
        super().__init__()
        self.rouge1 = RougeF(1, use_stemmer)
        self.rouge2 = RougeF(2, use_stemmer)
        self.simcse = SimCSEScore(embed, threshold)

    def update(self, preds: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> None:
        if not preds:
            return
        self.rouge1.update(preds, targets)
        self.rouge2.update(preds, targets)
        self.simcse.update(preds, targets)

    def compute(self) -> dict[str, float]:
        simcse = self.simcse.compute()
        return {
            "rouge1": float(self.rouge1.fmeasure()),
            "rouge2": float(self.rouge2.fmeasure()),
            "simcse_precision": float(simcse["precision"]),
            "simcse_recall": float(simcse["recall"]),
            "simcse_f1": float(simcse["f1"]),
        }

    def reset(self) -> None:
        for m in (self.rouge1, self.rouge2, self.simcse):
            m.reset()

"""ROUGE-1 / ROUGE-2 F between generated and annotated issue text (000 §4.3, lexical metrics).

Why torchmetrics' ROUGEScore: 000 §4.3 reports ROUGE-1 and ROUGE-2 "between the model-generated
text and human-annotated issues"; torchmetrics reproduces the `rouge-score` package (Lin 2004 as
implemented by Google; tests/test_rouge.py checks the parity) and, for ROUGE-n, needs no
downloaded nltk data. This file only adapts it to issue sets: an issue list is scored as its
target text ("a, b"), and the metric's number is one scalar, the mean of per-feedback F (`fmeasure()`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchmetrics.text.rouge import ROUGEScore

from feedback_nlp.core.issue_sets import join_issues


def as_text(item: str | Sequence[str]) -> str:
    """An issue list is scored as its target text ("a, b"); a string as itself."""
    return item if isinstance(item, str) else join_issues(item)


class RougeF(ROUGEScore):
    """Mean ROUGE-n F over feedback (per-sample scores are list states: DDP ranks concatenate)."""

    def __init__(self, n: int = 1, use_stemmer: bool = False, **kwargs: Any):
        if not 1 <= n <= 9:
            raise ValueError(f"ROUGE-n needs 1 <= n <= 9, got {n}")
        super().__init__(use_stemmer=use_stemmer, rouge_keys=(f"rouge{n}",), **kwargs)
        self.n = n

    def update(self, preds: Sequence[str | Sequence[str]], targets: Sequence[str | Sequence[str]]) -> None:
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
        super().update([as_text(p) for p in preds], [as_text(t) for t in targets])

    def fmeasure(self) -> torch.Tensor:
        """The mean ROUGE-n F (synced over ranks): this metric's one number. `compute()` keeps the
        base class's dict (precision, recall, fmeasure), so the metric stays a ROUGEScore."""
        return self.compute()[f"rouge{self.n}_fmeasure"].float()

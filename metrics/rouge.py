"""ROUGE-1 / ROUGE-2 F between generated and annotated issue text (000 §4.3, lexical metrics).

Why: 000 §4.3 reports ROUGE-1 and ROUGE-2 "between the model-generated text and human-annotated
issues". torchmetrics' ROUGE needs nltk data we cannot download, so the n-gram math is a pure
function here that reproduces the `rouge-score` package (Lin 2004 as implemented by Google):
lowercase, every non-[a-z0-9] run becomes a space, optional Porter stemming of words longer
than 3 characters; P = overlap / predicted n-grams, R = overlap / reference n-grams, F their
harmonic mean. The corpus score is the mean of per-feedback F (no bootstrap).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Sequence

import torch
from torchmetrics import Metric

from feedback_nlp.metrics.issue_sets import join_issues

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_VALID = re.compile(r"^[a-z0-9]+$")


def porter_stemmer() -> Callable[[str], str]:
    """rouge-score's stemmer (nltk's Porter, which needs no downloaded data)."""
    from nltk.stem import porter
    return porter.PorterStemmer().stem


def rouge_tokenize(text: str, stem: Callable[[str], str] | None = None) -> list[str]:
    """rouge-score's default tokenizer: lowercase, non-alphanumerics to spaces, optional stemming."""
    tokens = _NON_ALNUM.sub(" ", text.lower()).split()
    if stem is not None:
        tokens = [stem(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if _VALID.match(t)]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(prediction: str, reference: str, n: int, stem: Callable[[str], str] | None = None
            ) -> tuple[float, float, float]:
    """(precision, recall, F) of ROUGE-n for one prediction against one reference."""
    pred, ref = _ngrams(rouge_tokenize(prediction, stem), n), _ngrams(rouge_tokenize(reference, stem), n)
    overlap = sum(min(count, pred[g]) for g, count in ref.items())
    precision = overlap / max(sum(pred.values()), 1)
    recall = overlap / max(sum(ref.values()), 1)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f


def as_text(item: str | Sequence[str]) -> str:
    """An issue list is scored as its target text ("a, b"); a string as itself."""
    return item if isinstance(item, str) else join_issues(item)


class RougeF(Metric):
    """Mean ROUGE-n F over feedback; sums are states reduced by "sum", so DDP ranks agree."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, n: int = 1, use_stemmer: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if n < 1:
            raise ValueError(f"ROUGE-n needs n >= 1, got {n}")
        self.n = n
        self._stem = porter_stemmer() if use_stemmer else None
        self.add_state("f_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Sequence[str | Sequence[str]], targets: Sequence[str | Sequence[str]]) -> None:
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
        for p, t in zip(preds, targets):
            self.f_sum += rouge_n(as_text(p), as_text(t), self.n, self._stem)[2]
        self.count += len(preds)

    def compute(self) -> torch.Tensor:
        return (self.f_sum / self.count.clamp(min=1)).float()

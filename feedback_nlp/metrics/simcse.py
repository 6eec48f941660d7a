"""SimCSE precision / recall / F1 of generated vs annotated issue sets (000 §4.3, App. B).

Why: ROUGE misses paraphrases ("minor scratches" vs "minor cosmetic defects"); 000 §4.3 defines
a semantic metric instead. Per feedback, every (generated, annotated) issue pair whose sentence
embeddings have cosine similarity above the threshold (0.7, eq. 1: strictly greater) is a match —
every matching pair counts, even several for one issue (App. B) — then
    precision = min(1, matches / #generated),  recall = min(1, matches / #annotated),
and both are averaged over feedback. F1 is the harmonic mean of the *averaged* precision and
recall (the paper reports P and R; this is the F1 its Tables 3 and 5 can be computed from).
Edge cases: no generated issue -> precision 0 and recall 0; no annotated issue -> recall 0 and
precision 0, unless both sets are empty (a correct "no issue"), which scores 1 and 1.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torchmetrics import Metric

Embed = Callable[[list[str]], torch.Tensor]


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(I, J) cosine similarities between the rows of `a` (I, d) and `b` (J, d)."""
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return a @ b.T


def simcse_match_count(generated: torch.Tensor, annotated: torch.Tensor, threshold: float = 0.7) -> int:
    """000 eq. 1: the number of (generated, annotated) pairs with similarity > threshold."""
    if generated.shape[0] == 0 or annotated.shape[0] == 0:
        return 0
    return int((cosine_matrix(generated, annotated) > threshold).sum())


def simcse_match_counts(
    generated: Sequence[torch.Tensor], annotated: Sequence[torch.Tensor], threshold: float = 0.7
) -> list[int]:
    """Match counts for each feedback, given each one's generated and annotated issue embeddings."""
    return [simcse_match_count(g, a, threshold) for g, a in zip(generated, annotated, strict=True)]


def simcse_precision_recall(matches: int, n_generated: int, n_annotated: int) -> tuple[float, float]:
    """One feedback's SimCSE precision and recall, capped at 1 (App. B), edge cases as above."""
    if n_generated == 0 and n_annotated == 0:
        return 1.0, 1.0
    precision = min(1.0, matches / n_generated) if n_generated else 0.0
    recall = min(1.0, matches / n_annotated) if n_annotated else 0.0
    return precision, recall


def f1_score(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def embed_sets(sets: Sequence[Sequence[str]], embed: Embed) -> list[torch.Tensor]:
    """Embed every distinct issue string once; return one (n_i, d) tensor per set."""
    unique = list(dict.fromkeys(s for issues in sets for s in issues))
    if not unique:
        return [torch.zeros(0, 1) for _ in sets]
    vectors = embed(unique)
    row = {s: i for i, s in enumerate(unique)}
    empty = vectors.new_zeros(0, vectors.shape[1])
    return [vectors[[row[s] for s in issues]] if issues else empty for issues in sets]


def simcse_scores(
    generated: Sequence[Sequence[str]], annotated: Sequence[Sequence[str]], embed: Embed, threshold: float = 0.7
) -> list[tuple[float, float]]:
    """Per-feedback (precision, recall) for issue sets, embedding all strings in one call."""
    if len(generated) != len(annotated):
        raise ValueError(f"{len(generated)} generated sets for {len(annotated)} annotated sets")
    vectors = embed_sets([*generated, *annotated], embed)
    gen, ann = vectors[: len(generated)], vectors[len(generated) :]
    counts = simcse_match_counts(gen, ann, threshold)
    return [simcse_precision_recall(m, len(g), len(a)) for m, g, a in zip(counts, generated, annotated)]


def issue_simcse_prf(
    issue: str,
    generated: Sequence[Sequence[str]],
    annotated: Sequence[Sequence[str]],
    embed: Embed,
    threshold: float = 0.7,
) -> dict[str, float]:
    """SimCSE P/R/F1 of one selected issue over a test set (000 §5.2, Table 3).

    A feedback is *annotated* with the issue when its annotated set contains it (case-insensitive);
    it is *predicted* when some generated issue is a SimCSE match (> threshold) for it. Precision =
    annotated-and-predicted / predicted, recall = annotated-and-predicted / annotated.
    """
    target = embed([issue])[0:1]
    vectors = embed_sets(generated, embed)
    predicted = [v.shape[0] > 0 and simcse_match_count(v, target, threshold) > 0 for v in vectors]
    gold = [issue.casefold() in {a.casefold() for a in ann} for ann in annotated]
    tp = sum(p and g for p, g in zip(predicted, gold))
    precision = tp / sum(predicted) if any(predicted) else 0.0
    recall = tp / sum(gold) if any(gold) else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1_score(precision, recall),
        "n_annotated": float(sum(gold)),
        "n_predicted": float(sum(predicted)),
    }


class SimCSEScore(Metric):
    """Averaged SimCSE precision/recall (and their F1) over feedback; states sum under DDP."""

    higher_is_better = True
    full_state_update = False
    precision_sum: torch.Tensor  # states (add_state): summed over feedback, then over ranks
    recall_sum: torch.Tensor
    count: torch.Tensor

    def __init__(self, embed: Embed, threshold: float = 0.7, **kwargs: Any):
        super().__init__(**kwargs)
        self.embed, self.threshold = embed, threshold
        for name in ("precision_sum", "recall_sum"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> None:
        for p, r in simcse_scores(preds, targets, self.embed, self.threshold):
            self.precision_sum += p
            self.recall_sum += r
        self.count += len(preds)

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.count.clamp(min=1)
        precision, recall = (self.precision_sum / n).float(), (self.recall_sum / n).float()
        f1 = torch.where(
            precision + recall > 0,
            2 * precision * recall / (precision + recall).clamp(min=1e-12),
            torch.zeros_like(precision),
        )
        return {"precision": precision, "recall": recall, "f1": f1}

"""002 §3.2: the universal model -- a k-NN over the question repository, no training.

Why: agents' handling of a contact depends mostly on its topic, so similar questions have
similar outcomes. A query retrieves its top-K (paper: 100) most similar repository questions;
a categorical label is predicted as the mode of their labels, with the whole label
distribution returned (002 Fig. 3b), and a numeric label as their median (Fig. 3c). Any
label the repository holds can be predicted, and new questions count at once: `add` only
extends the retrieval index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from feedback_nlp.core.records import Question

WEIGHTINGS = ("count", "similarity")
QUERY_CHUNK = 256  # progress granularity; results do not depend on them


def _chunks(n: int, size: int, description: str, progress: bool) -> Iterable[int]:
    """Chunk starts 0, size, 2*size, ... < n, with a rich progress bar when asked."""
    starts: Iterable[int] = range(0, n, size)
    if progress and n > size:
        from rich.progress import track

        starts = track(starts, total=-(-n // size), description=description, transient=True)
    return starts


class NeighbourSource(Protocol):
    """A question repository as the universal model sees it (repository.Repository)."""

    def search(self, queries: Sequence[str], k: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]: ...
    def question(self, key: int) -> Question: ...
    def prior(self, name: str) -> list[Hashable]: ...
    def label_counts(self, name: str) -> dict[Hashable, int]: ...


def vote(
    labels: Sequence[Hashable],
    weights: Sequence[float] | np.ndarray | None = None,
    counts: Mapping[Hashable, int] | None = None,
    prior_power: float = 0.0,
) -> dict[Hashable, float]:
    """Label distribution of the neighbours, most likely first (ties: the better-ranked
    neighbour's label first). `weights` = similarity weighting; None = one vote each.

    `prior_power` a > 0 divides each label's mass by its repository count ** a (`counts`): a
    label with many questions has more chances to be among any query's neighbours, so its raw
    vote overstates it on repositories whose labels are unbalanced (a = 1: votes per question
    of that label). No fitting: the counts are the repository's, kept exact by add / delete.
    """
    mass: dict[Hashable, float] = {}
    for i, label in enumerate(labels):
        if label is None:
            continue
        mass[label] = mass.get(label, 0.0) + (1.0 if weights is None else max(float(weights[i]), 0.0))
    total = sum(mass.values())
    if total <= 0:  # e.g. all similarity weights 0: fall back to counts
        mass = {k: float(v) for k, v in Counter(x for x in labels if x is not None).items()}
        total = sum(mass.values())
    if prior_power and counts is not None and total > 0:
        mass = {lab: m / float(max(counts.get(lab, 1), 1)) ** prior_power for lab, m in mass.items()}
        total = sum(mass.values())
    first: dict[Hashable, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    order = sorted(mass, key=lambda lab: (-mass[lab], first[lab]))
    return {lab: mass[lab] / total for lab in order} if total else {}


def ranked_labels(distribution: dict[Hashable, float], prior: Sequence[Hashable] = ()) -> list[Hashable]:
    """The distribution's labels, then the remaining labels in prior (repository frequency)
    order, so Top-N is defined for every N, as for a classifier's full probability vector."""
    seen = set(distribution)
    return list(distribution) + [lab for lab in prior if lab not in seen]


def median(values: Sequence[float | None], weights: Sequence[float] | np.ndarray | None = None) -> float | None:
    """Median of the neighbours' numeric labels (weighted median with similarity weights)."""
    keep = [i for i, v in enumerate(values) if v is not None]
    if not keep:
        return None
    vals = np.asarray([values[i] for i in keep], dtype=np.float64)
    if weights is None:
        return float(np.median(vals))
    w = np.clip(np.asarray([weights[i] for i in keep], dtype=np.float64), 0.0, None)
    if w.sum() <= 0:
        return float(np.median(vals))
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(w[order])
    return float(vals[order][np.searchsorted(cum, cum[-1] / 2.0)])


class UniversalModel:
    """Question repository -> label predictions for new questions (votes of the top-K)."""

    def __init__(
        self,
        repository: NeighbourSource,
        categorical: Sequence[str] = ("product",),
        numeric: Sequence[str] = ("handle_time",),
        k: int = 100,
        weighting: str = "count",
        backfill_prior: bool = True,
        score_power: float = 1.0,
        prior_power: float = 0.0,
    ):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        for name, value in (("score_power", score_power), ("prior_power", prior_power)):
            if not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
                raise ValueError(f"prediction.{name} must be a finite number >= 0, got {value!r}")
        self.repository, self.k, self.weighting, self.backfill_prior = repository, k, weighting, backfill_prior
        self.score_power, self.prior_power = float(score_power), float(prior_power)
        self.categorical, self.numeric = list(categorical), list(numeric)

    @classmethod
    def from_settings(
        cls,
        repository: NeighbourSource,
        categorical: Sequence[str],
        numeric: Sequence[str],
        k: int,
        prediction: Mapping,
    ) -> UniversalModel:
        """The model a repository manifest's `prediction` section describes (export -> serve)."""
        return cls(
            repository,
            categorical,
            numeric,
            k,
            prediction.get("weighting", "similarity"),
            prediction.get("backfill_prior", True),
            prediction.get("score_power", 1.0),
            prediction.get("prior_power", 0.0),
        )

    def predict(self, queries: Sequence[str], progress: bool = False) -> list[dict[str, Any]]:
        """One dict per query: neighbours (ids, scores) and, per label, the prediction with its
        distribution (categorical: mode; numeric: median)."""
        queries = list(queries)
        hits: list[tuple[np.ndarray, np.ndarray]] = []
        for lo in _chunks(len(queries), QUERY_CHUNK, "universal model queries", progress):
            hits += self.repository.search(queries[lo : lo + QUERY_CHUNK], self.k)
        return [self.vote_row(keys, scores) for keys, scores in hits]

    def vote_row(self, keys: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        neigh = [self.repository.question(k) for k in keys]
        weights = None
        if self.weighting == "similarity":  # score ** p: p > 1 sharpens towards the nearest neighbours
            weights = np.clip(np.asarray(scores, np.float64), 0.0, None) ** self.score_power
        row: dict[str, Any] = {
            "neighbors": [q.id for q in neigh],
            "neighbor_keys": [int(k) for k in keys],
            "scores": [float(s) for s in scores],
        }
        for name in self.categorical:
            counts = self.repository.label_counts(name) if self.prior_power else None
            dist = vote([q.labels.get(name) for q in neigh], weights, counts, self.prior_power)
            ranked = ranked_labels(dist, self.repository.prior(name) if self.backfill_prior else ())
            row[name] = {"prediction": ranked[0] if ranked else None, "distribution": dist, "ranked": ranked}
        for name in self.numeric:
            vals = [_number(q.labels.get(name)) for q in neigh]
            row[name] = {"prediction": median(vals, weights), "values": [v for v in vals if v is not None]}
        return row


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)

"""Is a level's generation degenerate? Distinct outputs, the most frequent output, and length,
each measured against the references of the same feedback (issue 26).

Why: a seq2seq issue model can collapse on an unlucky seed to a few generic strings ("laptop
general" for every review) while its loss looks ordinary and its SimCSE F1 sinks to the
copy-the-input baseline; nobody who runs the recipe once notices. These three numbers show it at
every validation. They are compared with the references' own values, not with fixed numbers,
because the levels differ by nature: L-Coarse labels come from a small closed set (many
feedback share one label, so few distinct outputs are healthy there), L-Granular phrases are
nearly all distinct.

An output is compared as an issue *set* (`parse_issues`' rule: case-folded, whitespace
collapsed, order ignored), so "box soaked, screen cracked" and "screen cracked, box soaked" are
one output; length is the number of words over all issues of one feedback.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Sequence

REASONS = ("few_distinct", "one_dominant", "too_short", "too_long")


def canonical(issues: Sequence[str]) -> str:
    """One feedback's issues as a comparable key: case-folded, whitespace collapsed, sorted."""
    return " | ".join(sorted({" ".join(i.split()).casefold() for i in issues if i and i.strip()}))


def n_words(issues: Sequence[str]) -> int:
    return sum(len(i.split()) for i in issues)


@dataclasses.dataclass(frozen=True)
class GenerationHealth:
    """Per level: what the model wrote vs what the annotators wrote, over the same feedback."""

    n: int
    distinct_share: float  # distinct outputs / outputs
    top_share: float  # outputs equal to the most frequent one / outputs
    mean_words: float
    ref_distinct_share: float
    ref_top_share: float
    ref_mean_words: float

    @property
    def distinct_ratio(self) -> float:
        """The outputs' distinct share relative to the references' (1.0: as varied as the gold)."""
        return self.distinct_share / self.ref_distinct_share if self.ref_distinct_share else 1.0

    @property
    def length_ratio(self) -> float:
        """Mean words per output / mean words per reference (0: the model writes nothing)."""
        return self.mean_words / self.ref_mean_words if self.ref_mean_words else 1.0


def _shares(keys: Sequence[str]) -> tuple[float, float]:
    counts = Counter(keys)
    return len(counts) / len(keys), max(counts.values()) / len(keys)


def generation_health(predicted: Sequence[Sequence[str]], annotated: Sequence[Sequence[str]]) -> GenerationHealth:
    """The numbers for one level; `predicted[i]` and `annotated[i]` are the same feedback's issues."""
    if len(predicted) != len(annotated):
        raise ValueError(f"{len(predicted)} predictions for {len(annotated)} references")
    if not predicted:
        raise ValueError("no generated outputs to check")
    distinct, top = _shares([canonical(p) for p in predicted])
    ref_distinct, ref_top = _shares([canonical(a) for a in annotated])
    n = len(predicted)
    return GenerationHealth(
        n=n,
        distinct_share=distinct,
        top_share=top,
        mean_words=sum(n_words(p) for p in predicted) / n,
        ref_distinct_share=ref_distinct,
        ref_top_share=ref_top,
        ref_mean_words=sum(n_words(a) for a in annotated) / n,
    )


@dataclasses.dataclass(frozen=True)
class DegenerationLimits:
    """When a level counts as degenerate; each limit is relative to the references.

    Defaults: fewer than half as many distinct outputs as the references have; one output taking
    25 points more of the feedback than the references' most common annotation; outputs under
    half or over twice the references' length (a decoder stuck in a loop writes long)."""

    min_distinct_ratio: float = 0.5
    max_top_share_excess: float = 0.25
    min_length_ratio: float = 0.5
    max_length_ratio: float = 2.0

    def reasons(self, h: GenerationHealth) -> list[str]:
        """The `REASONS` that apply to `h` (empty: healthy)."""
        out = []
        if h.distinct_ratio < self.min_distinct_ratio:
            out.append("few_distinct")
        if h.top_share - h.ref_top_share > self.max_top_share_excess:
            out.append("one_dominant")
        if h.length_ratio < self.min_length_ratio:
            out.append("too_short")
        if h.length_ratio > self.max_length_ratio:
            out.append("too_long")
        return out

"""002 §3.3, Table 1: Top-N accuracy for a categorical label, within-k units for a numeric one.

Why pure functions: the universal model and the Random Forest baselines are scored by the
same code, from a ranked label list (categorical) or a point prediction (numeric).
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Sequence

TOP_N = (1, 5, 10, 15)
WITHIN = (3, 5, 7)


def top_n_accuracy(
    ranked: Sequence[Sequence[Hashable]], truth: Sequence[Hashable], ns: Sequence[int] = TOP_N
) -> dict[int, float]:
    """Share of queries whose true label is among the first N of their ranked labels."""
    pairs = [(r, t) for r, t in zip(ranked, truth) if t is not None]
    if not pairs:
        return {n: float("nan") for n in ns}
    return {n: sum(t in list(r)[:n] for r, t in pairs) / len(pairs) for n in ns}


def within_k(
    pred: Sequence[float | None], truth: Sequence[float | None], ks: Sequence[float] = WITHIN
) -> dict[float, float]:
    """Share of queries with |prediction - truth| <= k units (002 Table 1's "3/5/7 unit").

    A query without a prediction (no neighbour carries the label) counts as a miss; one
    without a true value is skipped.
    """
    pairs = [(p, t) for p, t in zip(pred, truth) if t is not None and not _nan(t)]
    if not pairs:
        return {k: float("nan") for k in ks}
    return {k: sum(p is not None and not _nan(p) and abs(p - t) <= k for p, t in pairs) / len(pairs) for k in ks}


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def metric_block(
    prefix: str,
    ranked: Sequence[Sequence[Hashable]] | None = None,
    truth_cat: Sequence[Hashable] | None = None,
    pred_num: Sequence[float | None] | None = None,
    truth_num: Sequence[float | None] | None = None,
    ns: Sequence[int] = TOP_N,
    ks: Sequence[float] = WITHIN,
) -> dict[str, float]:
    """Flat metric names: `{prefix}/top1`, ..., `{prefix}/within_3`, ..."""
    out: dict[str, float] = {}
    if ranked is not None and truth_cat is not None:
        out.update({f"{prefix}/top{n}": v for n, v in top_n_accuracy(ranked, truth_cat, ns).items()})
    if pred_num is not None and truth_num is not None:
        out.update({f"{prefix}/within_{_fmt(k)}": v for k, v in within_k(pred_num, truth_num, ks).items()})
    return out


def _fmt(k: float) -> str:
    return str(int(k)) if float(k).is_integer() else str(k)

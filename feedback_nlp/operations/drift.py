"""Score drift against the export's tested scores: population stability index and the KS statistic.

Why both: PSI is what credit-risk and ML monitoring teams alert on (rule of thumb: < 0.1 stable,
0.1-0.25 moderate, > 0.25 a shift), and it sees where mass moved; the two-sample
Kolmogorov-Smirnov statistic needs no binning and is the largest gap between the two
score CDFs. Both are per language (001 §5 reports per language): a shift in one language's
traffic hides in the pooled scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-4  # floor of a bin's share, so an empty bin gives a large but finite PSI
HIST_BINS = np.linspace(0.0, 1.0, 11)  # the reported score histogram (scores are probabilities)


def quantile_edges(reference: Any, bins: int = 10) -> np.ndarray:
    """Bin edges at the reference's quantiles (equal reference mass per bin), open at both ends."""
    ref = np.asarray(reference, dtype=np.float64)
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def psi(actual: Any, reference: Any, bins: int = 10) -> float:
    """sum over bins of (a - r) * ln(a / r), a and r the shares of actual and reference scores.
    Bins are the reference's deciles; a value equal to an edge falls in the bin to its right."""
    edges = quantile_edges(reference, bins)
    a = np.histogram(np.asarray(actual, dtype=np.float64), edges)[0].astype(np.float64)
    r = np.histogram(np.asarray(reference, dtype=np.float64), edges)[0].astype(np.float64)
    a = np.maximum(a / a.sum(), EPS)
    r = np.maximum(r / r.sum(), EPS)
    return float(np.sum((a - r) * np.log(a / r)))


def ks(actual: Any, reference: Any) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max |F_actual - F_reference| over every score
    (the empirical CDFs jump only there). Checked against scipy.stats.ks_2samp in the tests."""
    a = np.sort(np.asarray(actual, dtype=np.float64))
    r = np.sort(np.asarray(reference, dtype=np.float64))
    at = np.concatenate([a, r])
    fa = np.searchsorted(a, at, side="right") / a.size
    fr = np.searchsorted(r, at, side="right") / r.size
    return float(np.max(np.abs(fa - fr)))


def histogram(scores: Any) -> list[int]:
    return [int(c) for c in np.histogram(np.clip(np.asarray(scores, dtype=np.float64), 0, 1), HIST_BINS)[0]]

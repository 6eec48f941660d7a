"""Product-safety KPIs as pure functions (001 §4.2, Table 3).

Why: the paper judges a model by business KPIs, not by loss: recall must stay high so no
safety case is missed, and the volume of traffic forwarded to the PS team must stay
manageable. Keeping the arithmetic here (arrays in, numbers out) lets it be checked by hand
and reused by the LightningModule, the predictor and any offline report.

Conventions (stated once, used everywhere):
- a comment is predicted positive when `probability >= threshold`;
- labels are 1 (safety), 0 (not safety) or -1 (unlabeled traffic: ignored by precision/recall);
- precision with no predicted positives is 0.0 (torchmetrics' zero_division default); recall
  with no positives is undefined and returned as None (dropped from flat metric dicts);
- standard deviations are population std (ddof=0) across one comment's language versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, TypedDict

import numpy as np
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    recall: float | None
    precision: float | None
    reached: bool  # False only when the dev set has no positives (recall undefined)


def threshold_at_recall(probs: Any, labels: Any, target_recall: float = 0.95, fallback: float = 0.5) -> ThresholdChoice:
    """001 §4.2: the highest threshold whose dev recall is >= `target_recall`.

    Recall can only fall as the threshold rises, so the highest such threshold keeps the
    recall promise with the fewest false positives (smallest forwarded volume). Candidate
    thresholds are the distinct scores themselves (torchmetrics' exact PR curve).
    """
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    p = torch.as_tensor(np.asarray(probs, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels)).long()
    keep = y >= 0
    p, y = p[keep], y[keep]
    if p.numel() == 0 or int(y.sum()) == 0:
        return ThresholdChoice(float(fallback), None, None, False)
    precision, recall, thresholds = binary_precision_recall_curve(p, y)
    # precision/recall have one extra trailing entry (recall 0) with no threshold
    ok = torch.nonzero(recall[:-1] >= target_recall - 1e-12).flatten()
    i = int(ok.max())  # thresholds ascend; recall is non-increasing along them
    return ThresholdChoice(float(thresholds[i]), float(recall[i]), float(precision[i]), True)


class PrecisionRecall(TypedDict):
    """Counts and rates of `probs >= threshold` over the labeled entries."""

    precision: float  # 0.0 when nothing is predicted positive
    recall: float | None  # None when there is no positive
    tp: int
    fp: int
    fn: int
    support: int
    positives: int


def precision_recall_at(probs: Any, labels: Any, threshold: float) -> PrecisionRecall:
    """Precision and recall of `probs >= threshold` over the labeled entries (label >= 0)."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    keep = y >= 0
    pred, y = p[keep] >= threshold, y[keep] == 1
    tp, fp, fn = int(np.sum(pred & y)), int(np.sum(pred & ~y)), int(np.sum(~pred & y))
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "support": int(keep.sum()),
        "positives": tp + fn,
    }


def volumes(probs: Any, threshold: float, escalated: Any) -> dict[str, int]:
    """001 §4.2: Volume(Model) = traffic predicted positive; Volume(Model ∪ FCC) adds FCC escalations."""
    pred = np.asarray(probs, dtype=np.float64) >= threshold
    esc = np.asarray(escalated, dtype=bool)
    return {
        "volume_model": int(pred.sum()),
        "volume_model_or_fcc": int(np.sum(pred | esc)),
        "volume_fcc": int(esc.sum()),
        "size": int(pred.size),
    }


def fairness_std(probs: Any, groups: Any) -> tuple[float | None, int]:
    """001 §4.2 language fairness: mean over comments of the std of the score across its versions.

    `groups[i]` names the original comment that entry i is a version of (the original itself
    or a translation). Comments with fewer than two versions have no spread to measure and are
    left out; returns (mean std or None, number of comments averaged).
    """
    p, g = np.asarray(probs, dtype=np.float64), np.asarray(groups)
    if p.size == 0:
        return None, 0
    order = np.argsort(g, kind="stable")
    g_sorted, p_sorted = g[order], p[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    stds = [float(np.std(chunk)) for chunk in np.split(p_sorted, starts[1:]) if chunk.size >= 2]
    return (float(np.mean(stds)) if stds else None), len(stds)


def per_language(
    probs: Any, labels: Any, languages: Sequence[str], threshold: float, labeled_mask: Any, traffic_mask: Any
) -> dict[str, dict[str, float | int | None]]:
    """001 §5 dashboard: precision and recall per language (labeled entries), volume per language (traffic)."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    lang = np.asarray(languages, dtype=object)
    lab, traf = np.asarray(labeled_mask, dtype=bool), np.asarray(traffic_mask, dtype=bool)
    out: dict[str, dict[str, float | int | None]] = {}
    for code in sorted({str(x) for x in lang[lab | traf]}):
        is_l = lang == code
        pr = precision_recall_at(p[is_l & lab], y[is_l & lab], threshold)
        out[code] = {
            "precision": pr["precision"] if pr["support"] else None,
            "recall": pr["recall"],
            "n": pr["support"],
            "positives": pr["positives"],
            "volume_model": int(np.sum(p[is_l & traf] >= threshold)),
            "traffic": int(np.sum(is_l & traf)),
        }
    return out


def safety_kpis(
    probs: Any,
    labels: Any,
    threshold: float,
    *,
    in_test: Any,
    in_traffic: Any,
    is_original: Any,
    escalated: Any,
    group: Any,
    languages: Sequence[str],
) -> tuple[dict[str, float], dict[str, dict]]:
    """All Table 3 KPIs for one evaluation set, as a flat metric dict plus the per-language rows.

    - test/precision, test/recall: labeled original test comments;
    - traffic/volume_model, traffic/volume_model_or_fcc: original traffic comments (not translations);
    - test/fairness_std: over test comments that have translations (original + versions); 0.0 with
      test/fairness_groups = 0 when no test comment has a translation (the key is always there);
    - test/lang/<code>/{precision,recall}: every labeled test version in that language;
      traffic/lang/<code>/volume_model: original traffic comments in that language.
    """
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    t, tr, orig = (np.asarray(x, dtype=bool) for x in (in_test, in_traffic, is_original))
    pr = precision_recall_at(p[t & orig], y[t & orig], threshold)
    vol = volumes(p[tr & orig], threshold, np.asarray(escalated, dtype=bool)[tr & orig])
    fair, n_groups = fairness_std(p[t], np.asarray(group)[t])
    if fair is None and pr["support"]:
        fair = 0.0  # no translated test comment: every comment has one version, so no spread (groups = 0)
    flat: dict[str, float | None] = {
        "test/threshold": float(threshold),
        "test/precision": pr["precision"],
        "test/recall": pr["recall"],
        "test/support": pr["support"],
        "test/positives": pr["positives"],
        "traffic/volume_model": vol["volume_model"],
        "traffic/volume_model_or_fcc": vol["volume_model_or_fcc"],
        "traffic/volume_fcc": vol["volume_fcc"],
        "traffic/size": vol["size"],
        "test/fairness_std": fair,
        "test/fairness_groups": n_groups,
    }
    rows = per_language(p, y, languages, threshold, t & (y >= 0), tr & orig)
    for code, row in rows.items():
        for key in ("precision", "recall", "n"):
            flat[f"test/lang/{code}/{key}"] = row[key]
        flat[f"traffic/lang/{code}/volume_model"] = row["volume_model"]
    return {k: float(v) for k, v in flat.items() if v is not None}, rows

"""Each task's KPIs for `compare`, as a function of a resample of the evaluation set.

Why a function of indices: the paired bootstrap (operations/compare.py) draws the same records
for every export and recomputes each KPI on the draw, so a KPI must be computable from any
multiset of records, not only the full set. Per-record quantities (ROUGE, SimCSE P/R, Top-k
hits, correctness) are computed once; ratio KPIs (precision, recall, volume) from the draw's
counts, by the project's KPI functions (metrics/).

The bootstrap unit is a cluster: a product-safety comment with its translations (001 §4.2:
fairness is a spread across one comment's versions), otherwise one record. `draw[i]` numbers
the drawn cluster record i belongs to, so a cluster drawn twice counts as two comments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KPI = Callable[[np.ndarray, np.ndarray], dict[str, float | None]]  # (record indices, draw ids) -> KPIs


@dataclass
class TaskEval:
    clusters: np.ndarray  # cluster code (0..G-1) of every record
    kpis: KPI
    names: list[str]  # the KPIs this evaluation reports, in table order


def clusters_of(keys: Sequence[str]) -> np.ndarray:
    _, codes = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64)


# --- product safety (001 §4.2, Table 3) -------------------------------------------------------


def safety(records: Sequence[Any], rows: Sequence[dict[str, Any]]) -> TaskEval:
    """Recall and precision at the export's own threshold (labelled originals), Volume(Model) and
    Volume(Model ∪ FCC) over the unlabelled traffic (over every original when the set has none),
    language fairness std, and per language recall / precision / volume."""
    from feedback_nlp.metrics.product_safety import safety_kpis

    probs = np.array([r["probability"] for r in rows], dtype=np.float64)
    threshold = float(rows[0]["threshold"]) if rows else 0.5
    labels = np.array([-1 if r.label is None else int(r.label) for r in records], dtype=np.int64)
    in_test = labels >= 0
    in_traffic = ~in_test if (~in_test).any() else np.ones_like(in_test)
    original = np.array([getattr(r, "source_id", None) is None for r in records], dtype=bool)
    escalated = np.array([bool(getattr(r, "escalated", False)) for r in records], dtype=bool)
    languages = np.array([r.language for r in records], dtype=object)
    clusters = clusters_of([getattr(r, "source_id", None) or r.id for r in records])
    codes = sorted(set(languages.tolist()))

    def kpis(idx: np.ndarray, draw: np.ndarray) -> dict[str, float | None]:
        flat, per_lang = safety_kpis(
            probs[idx],
            labels[idx],
            threshold,
            in_test=in_test[idx],
            in_traffic=in_traffic[idx],
            is_original=original[idx],
            escalated=escalated[idx],
            group=draw,
            languages=list(languages[idx]),
        )
        out: dict[str, float | None] = {
            "recall": flat.get("test/recall"),
            "precision": flat.get("test/precision"),
            "volume": flat.get("traffic/volume_model"),
            "volume_model_or_fcc": flat.get("traffic/volume_model_or_fcc"),
            "fairness_std": flat.get("test/fairness_std"),
        }
        for code in codes:
            row = per_lang.get(code) or {}
            out[f"{code}/recall"] = row.get("recall")
            out[f"{code}/precision"] = row.get("precision")
            out[f"{code}/volume"] = row.get("volume_model")
        return out

    names = ["recall", "precision", "volume", "volume_model_or_fcc", "fairness_std"]
    names += [f"{c}/{k}" for c in codes for k in ("recall", "precision", "volume")]
    return TaskEval(clusters, kpis, names)


# --- tasks scored by per-record means ---------------------------------------------------------


def _means(per_record: dict[str, np.ndarray], f1_of: dict[str, tuple[str, str]] | None = None) -> KPI:
    """KPIs that are means over records (nan entries: no value for that record), plus F1 of two means."""

    def kpis(idx: np.ndarray, draw: np.ndarray) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, values in per_record.items():
            v = values[idx]
            v = v[~np.isnan(v)]
            out[name] = float(v.mean()) if v.size else None
        for name, (p, r) in (f1_of or {}).items():
            pv, rv = out.get(p), out.get(r)
            out[name] = None if pv is None or rv is None else (2 * pv * rv / (pv + rv) if pv + rv > 0 else 0.0)
        return out

    return kpis


def seacat(records: Sequence[Any], rows: Sequence[dict[str, Any]]) -> TaskEval:
    """Accuracy of the product/service label (002 §2)."""
    correct = np.array([float(str(row["label"]) == str(rec.label)) for rec, row in zip(records, rows)])
    return TaskEval(np.arange(len(records)), _means({"accuracy": correct}), ["accuracy"])


def universal_model(records: Sequence[Any], rows: Sequence[dict[str, Any]], ns: Sequence[int] = (1, 5, 10)) -> TaskEval:
    """Top-N accuracy per categorical label (002 §3.3, Table 1), labels ranked by their vote share."""
    from feedback_nlp.universal_model.metrics import top_n_accuracy

    names = [k for k, v in (rows[0] if rows else {}).items() if isinstance(v, dict) and "distribution" in v]
    per_record: dict[str, np.ndarray] = {}
    for label in names:
        for n in ns:
            hits = []
            for rec, row in zip(records, rows):
                truth = rec.labels.get(label)
                dist = row[label]["distribution"]
                ranked = sorted(dist, key=lambda k: (-dist[k], str(k)))
                hits.append(np.nan if truth is None else top_n_accuracy([ranked], [str(truth)], [n])[n])
            per_record[f"{label}/top{n}"] = np.array(hits, dtype=np.float64)
    return TaskEval(np.arange(len(records)), _means(per_record), list(per_record))


def issues(
    records: Sequence[Any], rows: Sequence[dict[str, Any]], embed: Any, levels: Sequence[str], threshold: float = 0.7
) -> TaskEval:
    """ROUGE-1/2 F and SimCSE precision / recall / F1 per issue level (000 §4.3)."""
    from rouge_score import rouge_scorer

    from feedback_nlp.metrics.rouge import as_text
    from feedback_nlp.metrics.simcse import simcse_scores

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=False)
    per_record: dict[str, np.ndarray] = {}
    f1_of: dict[str, tuple[str, str]] = {}
    for level in levels:
        gen = [list(row.get(level) or []) for row in rows]
        ann = [list(getattr(rec, level)) for rec in records]
        scores = [scorer.score(as_text(a), as_text(g)) for g, a in zip(gen, ann)]
        per_record[f"{level}/rouge1"] = np.array([s["rouge1"].fmeasure for s in scores])
        per_record[f"{level}/rouge2"] = np.array([s["rouge2"].fmeasure for s in scores])
        pr = simcse_scores(gen, ann, embed, threshold)
        per_record[f"{level}/simcse_precision"] = np.array([p for p, _ in pr])
        per_record[f"{level}/simcse_recall"] = np.array([r for _, r in pr])
        f1_of[f"{level}/simcse_f1"] = (f"{level}/simcse_precision", f"{level}/simcse_recall")
    names = [
        f"{lvl}/{k}" for lvl in levels for k in ("rouge1", "rouge2", "simcse_precision", "simcse_recall", "simcse_f1")
    ]
    return TaskEval(np.arange(len(records)), _means(per_record, f1_of), names)

"""The 001 §5 dashboard, offline: KPIs of served models per model_version, time window and language.

Why: "a dashboard reporting the performance of the production model in various time windows
(e.g., days, weeks, months) ... per-language Precision, Recall and the Volume for Model ∪ FCC",
and "discrepancies between performance on test data and dashboard help in detecting issues in
data pipelines" -- hence the score drift against the export's own tested scores.

Inputs: the prediction log (serving/prediction_log.py), the outcome labels that arrive later
(operations/outcomes.py) and, per model_version, the export's reference score sample
(serving/reference_scores.py). Windows follow `predicted_at` (UTC): day, ISO week (Monday
start, `2026-W10`), month. A record re-sent to the same model version counts once (its first
prediction). The arithmetic is the project's KPI functions (metrics/product_safety.py):
precision and recall over the labelled records of a window, Volume(Model) = records forwarded
(decision 1), Volume(Model ∪ FCC) where the FCC flag is known. Monitoring conventions: precision
is reported only when some labelled record was forwarded (no zero for "nothing to judge"),
recall only when some labelled record is a positive.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from feedback_nlp.metrics.product_safety import precision_recall_at, volumes
from feedback_nlp.operations.drift import histogram, ks, psi
from feedback_nlp.operations.outcomes import Outcome
from feedback_nlp.operations.rules import Rule

WINDOWS = ("day", "week", "month")
ALL = "all"  # the row over every language
UNKNOWN_LANGUAGE = "und"  # BCP 47 "undetermined": records without a language
METRICS = (
    "records",
    "volume_model",
    "volume_model_or_fcc",
    "fcc",
    "labelled",
    "positives",
    "precision",
    "recall",
    "accuracy",
    "score_mean",
    "psi",
    "ks",
)
SUPPORT = {"precision": "labelled", "recall": "labelled", "accuracy": "labelled"}  # alert only with enough labels
LOG_COLUMNS = ["id", "predicted_at", "task", "language", "score", "decision", "label", "escalated", "model_version"]


@dataclass
class Log:
    """The log's columns as arrays (one entry per kept prediction)."""

    task: str
    ids: np.ndarray
    versions: np.ndarray
    at: np.ndarray  # datetime64[ms], UTC
    language: np.ndarray
    score: np.ndarray  # nan: no score
    decision: np.ndarray  # -1: no decision (tasks other than product safety)
    label: np.ndarray  # predicted label (object) or None
    escalated: np.ndarray  # -1 unknown, 0, 1

    def take(self, idx: np.ndarray) -> Log:
        return Log(
            self.task,
            *(
                getattr(self, k)[idx]
                for k in ("ids", "versions", "at", "language", "score", "decision", "label", "escalated")
            ),
        )


def from_table(table: Any) -> Log:
    """Arrays of a pyarrow table read from the prediction log; one task per log."""
    tasks = sorted({t for t in table.column("task").to_pylist() if t is not None})
    if len(tasks) > 1:
        raise ValueError(f"the prediction log mixes tasks {tasks}; give monitor one task's log")
    col = lambda name: table.column(name).to_numpy(zero_copy_only=False)  # noqa: E731
    lang = np.array([x or UNKNOWN_LANGUAGE for x in table.column("language").to_pylist()], dtype=object)
    esc = np.array([-1 if x is None else int(x) for x in table.column("escalated").to_pylist()], dtype=np.int64)
    dec = np.array([-1 if x is None else int(x) for x in table.column("decision").to_pylist()], dtype=np.int64)
    score = np.array([np.nan if x is None else x for x in table.column("score").to_pylist()], dtype=np.float64)
    at = table.column("predicted_at").cast("timestamp[ms]").to_numpy(zero_copy_only=False).astype("datetime64[ms]")
    return Log(
        tasks[0] if tasks else "",
        col("id").astype(object),
        col("model_version").astype(object),
        at,
        lang,
        score,
        dec,
        col("label").astype(object),
        esc,
    )


def first_predictions(log: Log) -> Log:
    """One entry per (model_version, id): the earliest (a retried request counts once)."""
    order = np.lexsort((log.at, log.ids.astype(str), log.versions.astype(str)))
    s = log.take(order)
    key = np.char.add(np.char.add(s.versions.astype(str), "\x1f"), s.ids.astype(str))
    keep = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    return s.take(np.flatnonzero(keep))


def window_keys(at: np.ndarray, kind: str) -> np.ndarray:
    """`2026-03-02` (day), `2026-W10` (ISO week), `2026-03` (month) of each timestamp."""
    days = at.astype("datetime64[D]")
    if kind == "day":
        return days.astype(str).astype(object)
    if kind == "month":
        return days.astype("datetime64[M]").astype(str).astype(object)
    if kind == "week":
        out = {d: "{}-W{:02d}".format(*date.fromisoformat(d).isocalendar()[:2]) for d in np.unique(days.astype(str))}
        return np.array([out[d] for d in days.astype(str)], dtype=object)
    raise ValueError(f"unknown window {kind!r}; expected one of {', '.join(WINDOWS)}")


def _groups(*keys: np.ndarray) -> Iterator[tuple[tuple[str, ...], np.ndarray]]:
    """(key tuple, indices) of every distinct combination of `keys`, sorted."""
    if not len(keys[0]):
        return
    joined = keys[0].astype(str)
    for k in keys[1:]:
        joined = np.char.add(np.char.add(joined, "\x1f"), k.astype(str))
    uniq, inverse = np.unique(joined, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
    for i, name in enumerate(uniq):
        yield tuple(str(name).split("\x1f")), order[bounds[i] : bounds[i + 1]]


def kpis(
    log: Log,
    idx: np.ndarray,
    y: np.ndarray,
    fcc: np.ndarray,
    true_label: np.ndarray,
    reference: np.ndarray | None,
    min_drift_n: int,
) -> dict[str, Any]:
    """Every metric of one slice (indices into `log`). `y`: outcome 1/0, -1 unlabelled (safety);
    `fcc`: -1/0/1; `true_label`: the outcome class (other tasks) or None."""
    row: dict[str, Any] = {m: None for m in METRICS}
    row["records"] = int(idx.size)
    labelled = (y[idx] >= 0) | np.array([v is not None for v in true_label[idx]], dtype=bool)
    row["labelled"] = int(labelled.sum())
    dec = log.decision[idx]
    if (dec >= 0).all() and idx.size:  # product safety: a decision on every record
        known = fcc[idx] >= 0
        vol = volumes(dec, 1.0, fcc[idx] == 1)
        row["volume_model"] = vol["volume_model"]
        if known.any():
            row["fcc"] = vol["volume_fcc"]
            row["volume_model_or_fcc"] = vol["volume_model_or_fcc"]
        pr = precision_recall_at(dec, y[idx], 1.0)
        row["positives"] = pr["positives"]
        row["precision"] = pr["precision"] if int(pr["tp"] or 0) + int(pr["fp"] or 0) else None
        row["recall"] = pr["recall"]
    elif row["labelled"]:
        got = [(p, t) for p, t in zip(log.label[idx], true_label[idx]) if t is not None]
        row["accuracy"] = float(np.mean([str(p) == str(t) for p, t in got]))
    scores = log.score[idx][~np.isnan(log.score[idx])]
    if scores.size:
        row["score_mean"] = float(scores.mean())
        row["score_hist"] = histogram(scores)
        if reference is not None and reference.size >= min_drift_n and scores.size >= min_drift_n:
            row["psi"], row["ks"] = psi(scores, reference), ks(scores, reference)
    return row


def reference_arrays(sample: Mapping[str, Any] | None, split: str) -> dict[str, np.ndarray]:
    """language -> reference scores of one split, plus ALL (every language pooled)."""
    by_lang = ((sample or {}).get("splits") or {}).get(split) or {}
    out = {str(k): np.asarray(v, dtype=np.float64) for k, v in by_lang.items()}
    if out:
        out[ALL] = np.concatenate(list(out.values()))
    return out


def monitor(
    log: Log,
    outcomes: Mapping[str, Outcome],
    references: Mapping[str, Mapping[str, np.ndarray]],
    windows: Sequence[str] = WINDOWS,
    min_drift_n: int = 30,
) -> list[dict[str, Any]]:
    """One row per (model_version, window kind, window, language incl. ALL), sorted."""
    log = first_predictions(log)
    binary = log.task == "product_safety"
    y = np.full(len(log.ids), -1, dtype=np.int64)
    true_label = np.full(len(log.ids), None, dtype=object)
    fcc = log.escalated.copy()
    for i, rid in enumerate(log.ids):
        o = outcomes.get(str(rid))
        if o is None:
            continue
        if binary:
            y[i] = int(o.label)
        else:
            true_label[i] = o.label
        if o.escalated is not None:
            fcc[i] = int(o.escalated)
    rows = []
    for kind in windows:
        keys = window_keys(log.at, kind)
        for language_keys in (np.full(len(keys), ALL, dtype=object), log.language):
            for (version, window, language), idx in _groups(log.versions, keys, language_keys):
                refs = references.get(version) or {}
                ref = refs.get(language)
                if ref is None or ref.size < min_drift_n:
                    ref = refs.get(ALL)
                row = kpis(log, idx, y, fcc, true_label, ref, min_drift_n)
                rows.append({"model_version": version, "window": kind, "start": window, "language": language, **row})
    order = {k: i for i, k in enumerate(WINDOWS)}
    rows.sort(key=lambda r: (r["model_version"], order[r["window"]], r["start"], r["language"] != ALL, r["language"]))
    return rows


def alerts(rows: Sequence[Mapping[str, Any]], rules: Sequence[Rule], min_support: int = 20) -> list[str]:
    """One line per (row, crossed rule). A metric without a value, or with fewer than
    `min_support` labelled records behind it, is not checked."""
    out = []
    for row in rows:
        for rule in rules:
            value = row.get(rule.metric)
            if value is None or not rule.applies(row["window"], row["language"]):
                continue
            support = SUPPORT.get(rule.metric)
            if support and (row.get(support) or 0) < min_support:
                continue
            if not rule.holds(float(value)):
                out.append(
                    f"model {row['model_version']} {row['window']} {row['start']} {row['language']}: "
                    f"{rule.violation(float(value))} (rule {rule.text}, {row['records']} records, "
                    f"{row['labelled']} labelled)"
                )
    return out

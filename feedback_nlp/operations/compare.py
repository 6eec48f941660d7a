"""Candidate vs production on identical, frozen evaluation data, with paired bootstrap intervals.

Why: 001 §5 "the dashboard allows us to measure if a candidate model outperforms the production
one, before the actual deployment", and §4.1 "the test and traffic data are kept identical for
different models". Identical means: one evaluation file, named by its sha256 (refused when it
differs from the expected hash), minus the ids customers asked to delete (GDPR), removed from
every export's input alike. A difference of two KPIs on one set of records has a sampling error
that the two KPIs' own intervals overstate; the paired bootstrap resamples the records once per
round and scores every export on that same draw, so the interval is the difference's own.
Intervals are percentile intervals over `rounds` seeded draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.core.errors import UserError
from feedback_nlp.operations.compare_kpis import TaskEval
from feedback_nlp.operations.rules import Rule

KIND = {
    "product_safety": "claim",
    "multilevel_issues": "feedback",
    "mcml_bert": "feedback",
    "seacat": "transcript",
    "universal_model": "question",
}


class CompareError(UserError, ValueError):
    pass


# --- the frozen evaluation set ----------------------------------------------------------------


def read_deletions(path: Path) -> set[str]:
    """Ids to delete: one per line, plain or as a JSON object with `id` (blank lines ignored)."""
    if not Path(path).is_file():
        raise CompareError(f"--delete-ids {path}: no such file")
    from feedback_nlp.core.records import read_id_list

    return {i for _, i in read_id_list(path)}


@dataclass
class EvalSet:
    records: list[Any]
    sha256: str  # of the file as given
    deleted: int  # records removed by the deletion list
    ids_sha256: str  # of the scored ids (sorted): the same value means the same records were compared


def load_eval(path: Path, task: str, deletions: set[str]) -> EvalSet:
    from feedback_nlp.core.io import sha256_file
    from feedback_nlp.core.records import load_records

    records = load_records(path, KIND[task])
    kept = [r for r in records if r.id not in deletions]
    if not kept:
        raise CompareError(f"--eval {path}: no records left after the deletion list")
    ids = hashlib.sha256("\n".join(sorted(r.id for r in kept)).encode()).hexdigest()
    return EvalSet(kept, sha256_file(Path(path)), len(records) - len(kept), ids)


def scoring_record(rec: Any) -> Any:
    """The record a predictor reads (core/records.py's scoring contract) from a training record."""
    from feedback_nlp.core.records import QuestionRecord, TextRecord, TranscriptRecord

    if hasattr(rec, "turns"):
        return TranscriptRecord(rec.id, tuple(rec.turns))
    if hasattr(rec, "question"):
        return QuestionRecord(rec.id, rec.question)
    return TextRecord(rec.id, rec.text, getattr(rec, "language", None), getattr(rec, "escalated", None))


def score(predictor: Any, records: Sequence[Any], batch_size: int) -> list[dict[str, Any]]:
    from feedback_nlp.serving.protocol import check_rows

    out: list[dict[str, Any]] = []
    for lo in range(0, len(records), batch_size):
        chunk = [scoring_record(r) for r in records[lo : lo + batch_size]]
        out += check_rows(chunk, predictor.predict(chunk))
    return out


def evaluate(task: str, records: Sequence[Any], rows: Sequence[dict[str, Any]], embed: Any = None) -> TaskEval:
    from feedback_nlp.operations import compare_kpis

    if task == "product_safety":
        return compare_kpis.safety(records, rows)
    if task == "seacat":
        return compare_kpis.seacat(records, rows)
    if task == "universal_model":
        return compare_kpis.universal_model(records, rows)
    levels = ["coarse", "granular"] if task == "multilevel_issues" else ["coarse"]
    return compare_kpis.issues(records, rows, embed, levels)


# --- paired bootstrap -------------------------------------------------------------------------


def _draw(clusters: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(record indices, drawn-cluster number of each) of one draw of the clusters with replacement."""
    order = np.argsort(clusters, kind="stable")
    sizes = np.bincount(clusters)
    starts = np.cumsum(sizes) - sizes
    chosen = rng.integers(0, sizes.size, sizes.size)
    s = sizes[chosen]
    within = np.arange(s.sum()) - np.repeat(np.cumsum(s) - s, s)
    return order[np.repeat(starts[chosen], s) + within], np.repeat(np.arange(chosen.size), s)


def compare(
    evals: Mapping[str, TaskEval], baseline: str, rounds: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """KPIs of every export, and for every other export its difference to `baseline` with a
    paired bootstrap interval: {"kpis", "values": {name: {kpi: v}}, "diffs": {name: {kpi:
    {"diff", "low", "high", "rounds"}}}}. A round where a KPI is undefined (no positive drawn)
    is left out of that KPI's interval (`rounds` says how many counted)."""
    base = evals[baseline]
    n = base.clusters.size
    names = list(dict.fromkeys(k for e in evals.values() for k in e.names))
    full = np.arange(n)
    values = {name: e.kpis(full, base.clusters) for name, e in evals.items()}
    others = [name for name in evals if name != baseline]
    samples: dict[str, dict[str, list[float]]] = {o: {k: [] for k in names} for o in others}
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        idx, draw = _draw(base.clusters, rng)
        b = base.kpis(idx, draw)
        for o in others:
            c = evals[o].kpis(idx, draw)
            for k in names:
                if c.get(k) is not None and b.get(k) is not None:
                    samples[o][k].append(float(c[k]) - float(b[k]))  # type: ignore[arg-type]
    alpha = (1 - confidence) / 2
    diffs: dict[str, dict[str, dict[str, Any]]] = {}
    for o in others:
        diffs[o] = {}
        for k in names:
            cv, bv = values[o].get(k), values[baseline].get(k)
            d = None if cv is None or bv is None else float(cv) - float(bv)
            s = np.asarray(samples[o][k])
            lo, hi = (float(np.quantile(s, alpha)), float(np.quantile(s, 1 - alpha))) if s.size else (None, None)
            diffs[o][k] = {"diff": d, "low": lo, "high": hi, "rounds": int(s.size)}
    return {"kpis": names, "baseline": baseline, "values": values, "diffs": diffs, "confidence": confidence}


def decide(diffs: Mapping[str, Mapping[str, Any]], rules: Sequence[Rule], on: str = "point") -> dict[str, Any]:
    """Per candidate: promote when every rule holds for candidate - baseline. `on="point"` checks
    the difference itself; `on="interval"` the interval's worse end (the lower end for >= and >,
    the upper for <= and <). A KPI without a value fails its rule (nothing shows it holds)."""
    out: dict[str, Any] = {}
    for name, by_kpi in diffs.items():
        failed = []
        for rule in rules:
            d = by_kpi.get(rule.metric) or {}
            value = d.get("diff") if on == "point" else d.get("low" if rule.op in (">=", ">") else "high")
            if value is None:
                failed.append(f"{rule.text}: {rule.metric} has no value")
            elif not rule.holds(float(value)):
                failed.append(f"{rule.text}: {rule.violation(float(value))}")
        out[name] = {"promote": not failed and bool(rules), "failed": failed}
    return out


def table(result: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One side-by-side table: KPI, each export's value, each candidate's difference [interval]."""
    base, names = result["baseline"], result["kpis"]
    exports = [base, *result["diffs"]]
    pct = int(round(result["confidence"] * 100))
    header = ["kpi", *exports, *(f"{o} - {base} [{pct}% CI]" for o in result["diffs"])]
    fmt = lambda v: "–" if v is None else f"{v:.4g}"  # noqa: E731
    rows = []
    for k in names:
        cells = [k, *(fmt(result["values"][e].get(k)) for e in exports)]
        for o in result["diffs"]:
            d = result["diffs"][o][k]
            ci = "" if d["low"] is None else f" [{d['low']:+.4g}, {d['high']:+.4g}]"
            cells.append("–" if d["diff"] is None else f"{d['diff']:+.4g}{ci}")
        rows.append(cells)
    return header, rows


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"

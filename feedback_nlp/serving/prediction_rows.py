"""One prediction-log row per scored record: the columns, and how each task's response fills them.

Why its own module: the writer (serving/prediction_log.py) is about never losing a row; what a
row holds is about the tasks. Every task shares one Parquet schema (columns a task does not fill
are null), so one dataset reads a log whatever was served. A row never holds the input text
unless `log_text` is on -- not even inside the task's details (SeaCat's main question is a
sentence of the transcript).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

PARTITIONS = pa.schema([("date", pa.string()), ("model_version", pa.string())])
FILE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("predicted_at", pa.timestamp("ms", tz="UTC")),
        ("task", pa.string()),
        ("language", pa.string()),
        ("text_sha256", pa.string()),
        ("text", pa.string()),
        ("label", pa.string()),  # safety / SeaCat / first universal-model label
        ("score", pa.float64()),  # safety probability, SeaCat or MCML top probability
        ("decision", pa.int8()),  # product safety: 1 = forwarded to the PS team
        ("coarse", pa.list_(pa.string())),  # issue sets (multilevel_issues, mcml_bert)
        ("granular", pa.list_(pa.string())),
        ("escalated", pa.bool_()),  # the FCC flag, where the record carries one (001 §4.2)
        ("details", pa.string()),  # task-specific JSON (threshold, distributions, neighbours...)
    ]
)
SCHEMA = pa.schema(list(FILE_SCHEMA) + list(PARTITIONS))


def record_text(record: Any) -> str:
    """The text a model read: a claim's or feedback's text, a question, a transcript's turns."""
    turns = getattr(record, "turns", None)
    if turns is not None:
        return "\n".join(f"{t.speaker}: {t.text}" for t in turns)
    return str(getattr(record, "text", None) or getattr(record, "question", ""))


def summarize(task: str, row: Mapping[str, Any], log_text: bool = False) -> dict[str, Any]:
    """The prediction and its score in the log's columns; the rest of the row as `details` JSON.
    Row fields that repeat the input (SeaCat's sentences, its main question) only with `log_text`."""
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if task == "product_safety":
        out = {"label": row.get("label"), "score": row.get("probability"), "decision": row.get("decision")}
        details = {"threshold": row.get("threshold")}
    elif task in ("multilevel_issues", "mcml_bert"):
        out = {"coarse": row.get("coarse"), "granular": row.get("granular")}
        probs = row.get("probabilities") or {}
        if probs:
            out["score"] = max(probs.values())
            details = {"probabilities": probs}
    elif task == "seacat":
        dist = row.get("label_distribution") or {}
        out = {"label": row.get("label"), "score": dist.get(row.get("label"))}
        details = {"main_question_index": row.get("main_question_index")}
        if log_text:
            details["main_question"] = row.get("main_question")
    elif task == "universal_model":
        labels = {k: v["prediction"] for k, v in row.items() if isinstance(v, Mapping) and "prediction" in v}
        first = next((k for k, v in row.items() if isinstance(v, Mapping) and "distribution" in v), None)
        if first is not None:
            dist = row[first]["distribution"]
            out = {
                "label": None if labels[first] is None else str(labels[first]),
                "score": max(dist.values(), default=None),
            }
        details = {"labels": labels, "neighbors": [n.get("id") for n in row.get("neighbors") or []]}
    else:
        details = {k: v for k, v in row.items() if k not in ("id", "model_version", "predicted_at")}
    if out.get("label") is not None:
        out["label"] = str(out["label"])
    out["details"] = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    return out


def entry(task: str, record: Any, row: Mapping[str, Any], log_text: bool = False) -> dict[str, Any]:
    """One log row (JSON-able) for a scored record and its stamped response row."""
    text = record_text(record)
    return {
        "id": str(row.get("id", record.id)),
        "model_version": str(row["model_version"]),
        "predicted_at": row["predicted_at"],
        "task": task,
        "language": getattr(record, "language", None),
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "text": text if log_text else None,
        "escalated": getattr(record, "escalated", None),
        **summarize(task, row, log_text),
    }

"""What every served model is: records in, one row per record out, each row with its `id`.

Why a Protocol and not a base class: the predictors (safety, issues, MCML, SeaCat, and the
universal model's repository built on another branch) share no code path, only this shape;
the server, predict.py and the benchmark rely on nothing else.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Predictor(Protocol):
    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """One row per record, in the records' order, each with the record's `id`."""
        ...


def check_rows(records: Sequence[Any], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows back in the records' order, matched by id; a missing or extra row is a bug, not data."""
    by_id = {str(r.get("id")): r for r in rows}
    missing = [rec.id for rec in records if rec.id not in by_id]
    if missing or len(by_id) != len(records):
        raise RuntimeError(
            f"predictor returned {len(rows)} rows for {len(records)} records (missing ids: {missing[:5]})"
        )
    return [dict(by_id[rec.id]) for rec in records]


def stamp_rows(records: Sequence[Any], rows: Sequence[Mapping[str, Any]], model_version: str) -> list[dict[str, Any]]:
    """Rows in record order, each naming the model version and the time it was predicted (001 §5)."""
    from datetime import datetime

    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    return [{**row, "model_version": model_version, "predicted_at": stamp} for row in check_rows(records, rows)]

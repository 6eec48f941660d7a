"""Double-blind human audit of model vs human issue sets (000 §4.3, §5.3, Table 4).

    python -m feedback_nlp.scripts.audit export --data test.jsonl --predictions RUN/predictions.jsonl --out audit/
    python -m feedback_nlp.scripts.audit score --sheet audit/sheet_filled.csv --key audit/key.json

Why: 000 §4.3 — "we first shuffle the model outputs and human annotations and then ask human
auditors to adjudicate the issues": the sheet lists every (feedback, level, issue set) once per
source, shuffled, under an opaque item id, with no column saying who wrote it; the key that maps
items back to sources lives in a separate file the auditors never see. Ratings (§4.3): 1 = all
issues correct, 2 = at least one missing, 3 = at least one wrong. Score (§5.3) = %Rating-1 +
0.5 x %Rating-2 per source; the model is reported relative to the human annotation.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.core.io import atomic_write_json, atomic_write_text
from feedback_nlp.core.issue_sets import join_issues
from feedback_nlp.core.records import load_records

ROOT = Path(__file__).resolve().parent.parent

COLUMNS = ["item", "feedback", "level", "issues", "rating"]
SOURCES = ("model", "human")


class AuditError(ValueError):
    pass


def build_audit(
    records: Sequence[Any],
    predictions: Mapping[str, Mapping[str, Any]],
    levels: Sequence[str],
    n: int | None = None,
    seed: int = 0,
) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """(sheet rows, key). Samples `n` feedback that have predictions, then shuffles all rows."""
    rng = random.Random(f"audit:{seed}")
    chosen = [r for r in records if r.id in predictions]
    if not chosen:
        raise AuditError("no feedback id of the data file appears in the predictions file")
    if n is not None and n < len(chosen):
        chosen = rng.sample(chosen, n)
    rows, key = [], {}
    for rec in chosen:
        for level in levels:
            if level not in predictions[rec.id]:
                raise AuditError(f"prediction for id {rec.id!r} has no {level!r} issues")
            for source in SOURCES:
                issues = getattr(rec, level) if source == "human" else predictions[rec.id][level]
                item = hashlib.sha256(f"{seed}:{rec.id}:{level}:{source}".encode()).hexdigest()[:10]
                rows.append(
                    {"item": item, "feedback": rec.text, "level": level, "issues": join_issues(issues), "rating": ""}
                )
                key[item] = {"id": rec.id, "level": level, "source": source}
    rng.shuffle(rows)
    return rows, key


def read_ratings(sheet_text: str, key: Mapping[str, Mapping[str, str]], where: str = "sheet") -> dict[str, int]:
    """item -> rating from a filled sheet; every keyed item must be rated 1, 2 or 3."""
    ratings, problems = {}, []
    for line, row in enumerate(csv.DictReader(io.StringIO(sheet_text)), start=2):
        item, raw = (row.get("item") or "").strip(), (row.get("rating") or "").strip()
        if item not in key:
            problems.append(f"{where}:{line}: unknown item {item!r}")
        elif raw not in ("1", "2", "3"):
            problems.append(f"{where}:{line}: rating must be 1, 2 or 3, got {raw!r}")
        else:
            ratings[item] = int(raw)
    missing = sorted(set(key) - set(ratings) - {p.split("'")[1] for p in problems if "unknown" in p})
    if missing:
        problems.append(f"{where}: {len(missing)} keyed item(s) have no row, e.g. {missing[:3]}")
    if problems:
        raise AuditError("\n".join(problems[:20]))
    return ratings


def audit_score(ratings: Sequence[int]) -> dict[str, float]:
    """000 §5.3 for one source: shares of ratings 1/2/3 (in %) and %R1 + 0.5 x %R2."""
    n = len(ratings)
    if n == 0:
        return {"n": 0, "pct_rating1": 0.0, "pct_rating2": 0.0, "pct_rating3": 0.0, "score": 0.0}
    pct = {k: 100.0 * sum(r == k for r in ratings) / n for k in (1, 2, 3)}
    return {"n": n, "pct_rating1": pct[1], "pct_rating2": pct[2], "pct_rating3": pct[3], "score": pct[1] + 0.5 * pct[2]}


def score_audit(ratings: Mapping[str, int], key: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Per level: each source's score and the model relative to human (Table 4), in %."""
    out: dict[str, dict[str, Any]] = {}
    for level in sorted({k["level"] for k in key.values()}):
        per = {
            s: audit_score([ratings[i] for i, k in key.items() if k["level"] == level and k["source"] == s])
            for s in SOURCES
        }
        human = per["human"]["score"]
        out[level] = {**per, "model_relative_to_human": 100.0 * per["model"]["score"] / human if human else None}
    return out


def to_markdown(report: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["| issue level | human score | model score | model relative to human |", "|---|---|---|---|"]
    for level, r in report.items():
        rel = r["model_relative_to_human"]
        lines.append(
            f"| {level} | {r['human']['score']:.1f} | {r['model']['score']:.1f} | "
            f"{'n/a' if rel is None else f'{rel:.1f}%'} |"
        )
    return "\n".join(lines) + "\n"


def _export(a: argparse.Namespace) -> None:
    records = load_records(a.data, "feedback")
    predictions = {}
    for line, raw in enumerate(Path(a.predictions).read_text(encoding="utf-8").splitlines(), start=1):
        if raw.strip():
            row = json.loads(raw)
            if "id" not in row:
                raise AuditError(f"{a.predictions}:{line}: prediction row without id")
            predictions[str(row["id"])] = row
    rows, key = build_audit(records, predictions, a.levels.split(","), a.n, a.seed)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    out = Path(a.out)
    atomic_write_text(out / "sheet.csv", buf.getvalue())
    atomic_write_json(out / "key.json", key)
    print(
        f"wrote {out / 'sheet.csv'} ({len(rows)} rows for auditors) and {out / 'key.json'} (keep it away "
        f"from the auditors)"
    )


def _score(a: argparse.Namespace) -> None:
    key = json.loads(Path(a.key).read_text(encoding="utf-8"))
    ratings = read_ratings(Path(a.sheet).read_text(encoding="utf-8"), key, a.sheet)
    report = score_audit(ratings, key)
    if a.out:
        atomic_write_json(Path(a.out), report)
        atomic_write_text(Path(a.out).with_suffix(".md"), to_markdown(report))
    print(to_markdown(report))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write a blind audit sheet (CSV) and its key (JSON)")
    e.add_argument("--data", required=True, help="feedback JSONL with the human issues (the test set)")
    e.add_argument("--predictions", required=True, help="predictions.jsonl of a run (id, coarse, granular)")
    e.add_argument("--out", required=True, help="output directory for sheet.csv and key.json")
    e.add_argument("--levels", default="coarse,granular")
    e.add_argument("--n", type=int, default=None, help="feedback to sample (000 §5.3 used 850); default all")
    e.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="score a filled sheet")
    s.add_argument("--sheet", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--out", default=None, help="report JSON path (a .md table is written next to it)")
    a = p.parse_args(argv)
    try:
        _export(a) if a.command == "export" else _score(a)
    except AuditError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

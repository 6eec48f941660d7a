"""Label-efficiency study: relative SimCSE-F1 of chosen issues vs their share in training (000 §5.2).

    python -m feedback_nlp.scripts.label_efficiency --config configs/experiment/multilevel_issues_demo.yaml \
        --issue "coarse:damaged item" --issue "granular:arrived broken" \
        --fractions 1,0.75,0.5,0.25,0 --out outputs/label_efficiency [config overrides...]

Why: 000 §5.2 / Table 3 fine-tunes the model "using the training dataset containing a fraction
of samples with those selected issues, then evaluate[s] the model on the same test dataset", and
reports each issue's SimCSE F1 relative to the 100% run. Here: the configured DataModule splits
the data once; for each issue and fraction only that share of the training feedback containing
the issue is kept (a seeded hash order, so 25% is a subset of 50%, a subset of 75%); every other
record, the dev set and the test set stay as they are. Each subset trains through `train.main`;
the issue's F1 (`feedback_nlp.metrics.simcse.issue_simcse_prf`) is read from the run's predictions on the test
set. Output: <out>/label_efficiency.{md,json,png} (the png: relative F1 against the kept share, per
issue). Runs with identical training sets (every 100% run) are trained once. Rows of other issues
already in <out> from the same config and fractions are kept (configs/sweeps/label_efficiency.yaml
runs one issue per W&B agent run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.core.config import ConfigError, load_config
from feedback_nlp.core.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from feedback_nlp.core.records import Feedback
from feedback_nlp.core.vocabulary import ISSUE_LEVELS
from feedback_nlp.datamodules.splits import hash_unit
from feedback_nlp.training.run_dir import ENV_VAR as RUN_DIR_ENV

ROOT = Path(__file__).resolve().parent.parent

LEVELS = ISSUE_LEVELS


def parse_issue(spec: str) -> tuple[str, str]:
    level, sep, issue = spec.partition(":")
    if not sep or level not in LEVELS or not issue.strip():
        raise ConfigError(f"--issue {spec!r} must look like coarse:ISSUE or granular:ISSUE")
    return level, issue.strip()


def has_issue(record: Feedback, level: str, issue: str) -> bool:
    return issue.casefold() in {x.casefold() for x in getattr(record, level)}


def subsample(records: Sequence[Feedback], level: str, issue: str, fraction: float, seed: int = 0) -> list[Feedback]:
    """Keep round(fraction x n) of the n records containing `issue` (lowest seeded hash first), all others.

    Nested by construction: the kept set at a smaller fraction is a subset of a larger one's.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    with_issue = sorted(
        (r for r in records if has_issue(r, level, issue)), key=lambda r: hash_unit(f"{level}:{issue}:{r.id}", seed)
    )
    keep = {r.id for r in with_issue[: round(fraction * len(with_issue))]}
    return [r for r in records if not has_issue(r, level, issue) or r.id in keep]


def to_row(r: Feedback) -> dict[str, Any]:
    row = {"id": r.id, "text": r.text, "coarse": r.coarse, "granular": r.granular, **r.extra}
    if r.created_at is not None:
        row["created_at"] = r.created_at.isoformat()
    if r.language is not None:
        row["language"] = r.language
    return row


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40]


def relative_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]], fractions: Sequence[float]) -> str:
    """Markdown in Table 3's shape: one row per issue, F1 relative to its 100% run."""
    head = "| Level - selected issue | " + " | ".join(f"{f:.0%} samples" for f in fractions) + " |"
    lines = [head, "|---|" + "---|" * len(fractions)]
    for name, row in results.items():
        cells = [row[f"{f:g}"]["relative_f1"] for f in fractions]
        lines.append(f"| {name} | " + " | ".join("n/a" if c is None else f"{c:.1f}%" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--issue", action="append", required=True, help="LEVEL:ISSUE, repeatable")
    p.add_argument("--fractions", default="1,0.75,0.5,0.25,0")
    p.add_argument("--out", required=True)
    p.add_argument("overrides", nargs="*", help="config overrides applied to every run")
    a = p.parse_args(argv)
    fractions = [float(x) for x in a.fractions.split(",")]
    if 1.0 not in fractions:
        fractions = [1.0, *fractions]  # the 100% run is the reference of every row
    issues = [parse_issue(s) for s in a.issue]

    from feedback_nlp.cli import train
    from feedback_nlp.core.instantiate import instantiate
    from feedback_nlp.metrics.multilevel_issues import SentenceEmbedder
    from feedback_nlp.metrics.simcse import issue_simcse_prf
    from feedback_nlp.training import wandb_job
    from feedback_nlp.training.logging_setup import check_logger

    cfg = load_config(a.config, a.overrides)
    check_logger(cfg.get("logger"))  # a W&B logger without a login stops here, before any training
    dm = instantiate(cfg.data, "data")
    splits = dm.validate()
    out = Path(a.out)
    data_dir = out / "data"
    atomic_write_jsonl(data_dir / "dev.jsonl", [to_row(r) for r in splits.dev])
    atomic_write_jsonl(data_dir / "test.jsonl", [to_row(r) for r in splits.test])
    embed = SentenceEmbedder(cfg.model.get("simcse_model") or "packaged:all-MiniLM-L6-v2")
    threshold = float(cfg.model.get("simcse_threshold") or 0.7)
    runs: dict[str, Path] = {}  # training-set fingerprint -> run dir
    # issue -> fraction ('%g') -> a JSON row: the SimCSE scores (float), train_samples_with_issue
    # (int), run_dir (str), relative_f1 (float or None); earlier runs' rows come back from JSON
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for level, issue in issues:
        name = f"{'L-Coarse' if level == 'coarse' else 'L-Granular'} - {issue}"
        results[name] = {}
        for frac in fractions:
            train_set = subsample(splits.train, level, issue, frac, cfg.seed)
            fingerprint = hashlib.sha256("\n".join(r.id for r in train_set).encode()).hexdigest()[:12]
            if fingerprint not in runs:
                run_dir = out / "runs" / f"{_slug(issue)}-{frac:g}-{fingerprint}"
                train_file = atomic_write_jsonl(data_dir / f"train-{fingerprint}.jsonl", [to_row(r) for r in train_set])
                os.environ.pop(RUN_DIR_ENV, None)  # each run gets its own dir (the variable is for DDP ranks)
                train.main(
                    [
                        "--config",
                        a.config,
                        *a.overrides,
                        "data.path=null",
                        f"+data.train_path={train_file}",
                        f"+data.dev_path={data_dir / 'dev.jsonl'}",
                        f"+data.test_path={data_dir / 'test.jsonl'}",
                        f"output_dir={run_dir}",
                        "run_predict=true",
                    ]
                )
                runs[fingerprint] = run_dir
            preds = {}
            for raw in (runs[fingerprint] / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
                if raw.strip():
                    row = json.loads(raw)
                    preds[str(row["id"])] = row.get(level, [])
            generated = [preds.get(r.id, []) for r in splits.test]
            annotated = [getattr(r, level) for r in splits.test]
            scores = issue_simcse_prf(issue, generated, annotated, embed, threshold)
            kept = sum(has_issue(r, level, issue) for r in train_set)
            results[name][f"{frac:g}"] = {**scores, "train_samples_with_issue": kept, "run_dir": str(runs[fingerprint])}
        ref = results[name]["1"]["f1"]
        for row in results[name].values():
            row["relative_f1"] = 100.0 * row["f1"] / ref if ref else None
    results = {**earlier_issues(out / "label_efficiency.json", fractions, a.config, a.overrides, results), **results}
    report = {"fractions": fractions, "issues": results, "config": a.config, "overrides": a.overrides}
    atomic_write_json(out / "label_efficiency.json", report)
    table = relative_table(results, fractions)
    atomic_write_text(out / "label_efficiency.md", table)
    from feedback_nlp.callbacks.plots.figures import save_png
    from feedback_nlp.callbacks.plots.multilevel_issues import label_efficiency_figure

    png = save_png(label_efficiency_figure(results), out / "label_efficiency.png")  # 000 Table 3 as a curve
    columns = ["issue", *[f"{f:.0%} samples" for f in fractions]]
    rows = [[name, *[row[f"{f:g}"]["relative_f1"] for f in fractions]] for name, row in results.items()]
    summary = {
        f"label_efficiency/{name}/{frac}": row["relative_f1"] for name, r in results.items() for frac, row in r.items()
    }
    wandb_job.log_job(
        cfg,
        out,
        "label_efficiency",
        summary,
        images={"multilevel/label_efficiency": png},
        tables={"multilevel/label_efficiency_table": (columns, rows)},
        data={"dev_path": data_dir / "dev.jsonl", "test_path": data_dir / "test.jsonl"},
    )
    print(table)
    return report


def earlier_issues(
    path: Path, fractions: Sequence[float], config: str, overrides: Sequence[str], new: dict[str, Any]
) -> dict[str, Any]:
    """Rows of other issues an earlier run of the same study wrote to this --out (one W&B sweep
    agent run per issue shares the table); a different config or fraction list starts afresh."""
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}
    same = (
        old.get("fractions") == list(fractions)
        and old.get("config") == config
        and old.get("overrides") == list(overrides)
    )
    return {k: v for k, v in old.get("issues", {}).items() if k not in new} if same else {}


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None

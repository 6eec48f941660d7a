"""`compare`: two or more exports of one task on one frozen evaluation set, with a promotion decision.

    feedback-nlp compare --eval test.jsonl [--expect-sha256 HEX] --export production=DIR
            --export candidate=DIR [...] [--baseline production] [--delete-ids ids.txt]
            [--rule "recall>=0" --rule "volume<=0" ...] [--decide-on point|interval]
            [--rounds 1000] [--seed 0] [--confidence 0.95] [--out DIR] [--logger none|wandb]

The evaluation file is a labelled file of the task's training format (claims, feedback,
transcripts, questions), identified by its sha256 (printed; with --expect-sha256 a different
file is refused). Ids in --delete-ids (GDPR deletions) are removed before any export scores.
Prints one table: every export's KPIs (safety: recall at its exported threshold, precision,
Volume, Volume(Model ∪ FCC), fairness std, per language; issues: ROUGE-1/2 and SimCSE P/R/F1
per level; universal model: Top-N per label; SeaCat: accuracy) and each candidate's difference
to the baseline (default: the first --export) with a paired bootstrap interval; then each
candidate's decision under the rules (on candidate - baseline). Exit codes: 0 every candidate
passes the rules (or none are given), 1 a candidate fails, 2 bad input. Paper 001 §4.1, §5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.errors import UserError


class UsageError(UserError, ValueError):
    pass


def parser() -> argparse.ArgumentParser:
    from feedback_nlp.core.model_factory import PACKAGED_MINILM

    p = Parser("compare", __doc__)
    p.add_argument("--eval", required=True, type=Path, help="the frozen evaluation set (the task's training format)")
    p.add_argument("--expect-sha256", default=None, help="refuse an evaluation file with another sha256")
    p.add_argument("--export", action="append", default=[], metavar="NAME=DIR", help="an export to score (2 or more)")
    p.add_argument("--baseline", default=None, help="the export the others are compared to (default: the first)")
    p.add_argument("--delete-ids", type=Path, default=None, help="ids to remove first (one per line)")
    p.add_argument("--rule", action="append", default=[], help="promotion rule on candidate - baseline, e.g. recall>=0")
    p.add_argument("--decide-on", default="point", choices=("point", "interval"))
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--simcse-model", default=PACKAGED_MINILM, help="embedder of the issue tasks' SimCSE metrics")
    p.add_argument("--out", type=Path, default=None, help="also write compare.json and compare.md here")
    p.add_argument("--logger", default="none", choices=("none", "wandb"))
    p.add_argument("--wandb-project", default="feedback-nlp")
    return p


def parse_exports(items: Sequence[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"--export {item!r}: expected NAME=DIR (for example candidate=outputs/run/export)")
        if name.strip() in out:
            raise UsageError(f"--export: the name {name.strip()!r} is given twice")
        out[name.strip()] = Path(path.strip())
    if len(out) < 2:
        raise UsageError("give at least two --export NAME=DIR (a baseline and a candidate)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        prepared = prepare(a)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run(a, *prepared)


def prepare(a: argparse.Namespace) -> tuple[Any, ...]:
    """Every check before a model loads: flags, exports' manifests and hashes, the evaluation
    file's hash and lines, the deletion list, the rules (against the task's KPI names)."""
    from feedback_nlp.core.io import sha256_file
    from feedback_nlp.operations.compare import KIND, load_eval, read_deletions
    from feedback_nlp.operations.rules import parse_rule
    from feedback_nlp.serving.registry import preflight
    from feedback_nlp.serving.runtime import resolve

    exports = parse_exports(a.export)
    baseline = a.baseline or next(iter(exports))
    if baseline not in exports:
        raise UsageError(f"--baseline {baseline!r} is not an --export name ({', '.join(exports)})")
    if a.rounds < 0 or not 0 < a.confidence < 1 or a.batch_size < 1:
        raise UsageError("need --rounds >= 0, 0 < --confidence < 1 and --batch-size >= 1")
    if not a.eval.is_file():
        raise UsageError(f"--eval {a.eval}: no such file")
    digest = sha256_file(a.eval)
    print(f"evaluation set {a.eval}: sha256 {digest}", flush=True)
    if a.expect_sha256 and a.expect_sha256.lower() != digest:
        raise UsageError(f"--eval {a.eval}: sha256 {digest} differs from --expect-sha256 {a.expect_sha256}")
    options = resolve(a.device, "fp32", "torch", a.batch_size)
    manifests = {name: preflight(path, options) for name, path in exports.items()}
    tasks = {name: m["task"] for name, m in manifests.items()}
    if len(set(tasks.values())) > 1:
        raise UsageError(f"the exports are of different tasks: {tasks}")
    task = tasks[baseline]
    if task not in KIND:
        raise UsageError(f"compare knows no KPIs for task {task!r}")
    deletions = read_deletions(a.delete_ids) if a.delete_ids else set()
    evalset = load_eval(a.eval, task, deletions)
    kpis = kpi_names(task, evalset.records)
    rules = [parse_rule(r, kpis) for r in a.rule]
    return exports, manifests, baseline, task, evalset, rules, options


def kpi_names(task: str, records: Sequence[Any]) -> list[str] | None:
    """The KPI names a rule may use (None: known only from the predictions)."""
    if task == "product_safety":
        langs = sorted({r.language for r in records})
        return ["recall", "precision", "volume", "volume_model_or_fcc", "fairness_std"] + [
            f"{c}/{k}" for c in langs for k in ("recall", "precision", "volume")
        ]
    if task == "seacat":
        return ["accuracy"]
    if task in ("multilevel_issues", "mcml_bert"):
        levels = ["coarse", "granular"] if task == "multilevel_issues" else ["coarse"]
        return [
            f"{lv}/{k}" for lv in levels for k in ("rouge1", "rouge2", "simcse_precision", "simcse_recall", "simcse_f1")
        ]
    return None  # universal model: <label>/topN of the repository's labels


def run(
    a: argparse.Namespace,
    exports: dict[str, Path],
    manifests: dict[str, Any],
    baseline: str,
    task: str,
    evalset: Any,
    rules: list[Any],
    options: Any,
) -> int:
    from feedback_nlp.core.io import atomic_write_json, atomic_write_text
    from feedback_nlp.operations.compare import compare, decide, evaluate, markdown, score, table
    from feedback_nlp.serving.registry import load_export

    print(
        f"{len(evalset.records)} records scored ({evalset.deleted} removed by the deletion list); "
        f"scored ids sha256 {evalset.ids_sha256}",
        flush=True,
    )
    embed = None
    if task in ("multilevel_issues", "mcml_bert"):
        from feedback_nlp.core.embeddings import SentenceEmbedder

        embed = SentenceEmbedder(a.simcse_model, device=options.device)
    evals = {}
    for name, path in exports.items():
        predictor, manifest = load_export(path, options)
        evals[name] = evaluate(task, evalset.records, score(predictor, evalset.records, a.batch_size), embed)
    result = compare(evals, baseline, a.rounds, a.seed, a.confidence)
    decision = decide(result["diffs"], rules, a.decide_on)
    header, rows = table(result)
    print(markdown(header, rows), end="")
    for name, d in decision.items():
        verdict = "promote" if d["promote"] else ("no rules given" if not rules else "keep " + baseline)
        print(f"{name}: {verdict}" + "".join(f"\n  fails {f}" for f in d["failed"]))
    report = {
        "task": task,
        "eval": str(a.eval),
        "eval_sha256": evalset.sha256,
        "scored_ids_sha256": evalset.ids_sha256,
        "deleted": evalset.deleted,
        "records": len(evalset.records),
        "exports": {n: {"dir": str(p), "model_version": manifests[n]["model_version"]} for n, p in exports.items()},
        "rules": [r.text for r in rules],
        "decide_on": a.decide_on,
        "rounds": a.rounds,
        "seed": a.seed,
        **result,
        "decision": decision,
    }
    if a.out is not None:
        atomic_write_json(a.out / "compare.json", report)
        atomic_write_text(a.out / "compare.md", markdown(header, rows))
    if a.logger == "wandb":
        from feedback_nlp.operations.wandb_log import log_job

        summary = {f"decision/{n}": d["promote"] for n, d in decision.items()}
        config = {
            k: report[k] for k in ("task", "eval_sha256", "scored_ids_sha256", "rules", "rounds", "seed", "exports")
        }
        run_id = log_job(
            a.wandb_project, "compare", a.out or Path("."), config, {"compare/kpis": (header, rows)}, {}, summary
        )
        print(f"logged to W&B run {run_id}")
    return 0 if all(d["promote"] for d in decision.values()) or not rules else 1

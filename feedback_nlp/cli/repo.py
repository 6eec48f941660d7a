r"""`feedback-nlp repo`: the question repository and the universal model (002 §3).

    feedback-nlp repo evaluate --config configs/experiment/universal_model_demo.yaml
    feedback-nlp repo evaluate --config configs/experiment/universal_model_clinc150.yaml \
        repository.path=other/repo.jsonl queries.path=other/queries.jsonl labels.categorical=[intent] labels.numeric=[]
    feedback-nlp repo scaling --config configs/experiment/universal_model_clinc150.yaml
    feedback-nlp repo export --config configs/experiment/universal_model_clinc150.yaml out=exports/clinc150
    feedback-nlp repo add exports/clinc150 --questions new.jsonl
    feedback-nlp repo delete exports/clinc150 --ids ids.txt        # or: --ids ID [ID ...]
    feedback-nlp repo stats exports/clinc150 [--json]
    feedback-nlp repo update exports/repo --transcripts new.jsonl --seacat-export exports/seacat \
        --queries frozen_queries.jsonl [--expect-sha256 HEX] [--delete-ids ids.txt] [--rule product/top1>=-0.01]

`export`, `add`, `delete`, `stats`: the question repository folder (docs/question_repository.md).
`update`: the periodic job (operations/repository_update.py, docs/operating.md §8): new transcripts
-> SeaCat main questions -> added with their labels, the deletion list applied, the repository
before vs after compared on a frozen query set; committed atomically, and only if every --rule
holds (exit 1 and the repository unchanged otherwise).
`evaluate` writes run_dir/{config.yaml, metrics.json, metrics.md, predictions.jsonl}
with keys like test/top1, test/top5, test/within_5, rf/top1. `scaling` writes
run_dir/scaling.{md,json}: the universal model and the RF at growing repository sizes
(002 Table 1: 3K/6K/9K/12K).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.config import ConfigError, load_config, to_yaml


def _run_dir(cfg: Any, suffix: str = "") -> Path:
    """output_dir, or <output_root>/<experiment><suffix>/<run id>: the same run identity as train.py
    (run_id=, the SLURM/torchrun job id, else a new id); a finished run dir is never reused."""
    from feedback_nlp.training.run_dir import ENV_VAR, resolve_run_dir

    os.environ.pop(ENV_VAR, None)  # one process: it never inherits a run dir from a launcher
    path, _ = resolve_run_dir(
        cfg.get("output_dir"), f"{cfg.experiment}{suffix}", cfg.get("output_root", "outputs"), run_id=cfg.get("run_id")
    )
    os.environ.pop(ENV_VAR, None)  # one process: no rank inherits it, and a later run in-process must not
    path.mkdir(parents=True, exist_ok=True)
    return path


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}"


def table1_columns(cfg: Any) -> list[tuple[str, str]]:
    """(column title, metric suffix) in 002 Table 1's order."""
    cols = [(f"Top-{n}", f"top{n}") for n in cfg.metrics.top_n] if cfg.labels.categorical else []
    if cfg.labels.numeric:
        cols += [(f"{k} unit", f"within_{k}") for k in cfg.metrics.within]
    return cols


def check_models(cfg: Any) -> None:
    """Bad retrieval settings or an unavailable embedder (dense / hybrid) stop before any write."""
    from feedback_nlp.cli.repo_evaluation import (
        embedder_name,
        retrieval_settings,
    )

    if retrieval_settings(cfg).needs_embedder:
        from feedback_nlp.core.model_factory import resolve_name_or_path

        resolve_name_or_path(embedder_name(cfg))


def evaluate(cfg: Any) -> dict[str, float]:
    from feedback_nlp.cli.repo_evaluation import (
        check_labels,
        evaluate_rf,
        evaluate_um,
        load_repository_and_queries,
    )
    from feedback_nlp.core.io import (
        atomic_write_json,
        atomic_write_jsonl,
        atomic_write_text,
    )
    from feedback_nlp.training.logging_setup import check_logger

    check_logger(cfg.get("logger"))  # a W&B logger without a login stops here, before any work
    repo, queries = load_repository_and_queries(cfg)  # bad input stops here, before any run dir exists
    check_labels(cfg, repo, queries)
    check_models(cfg)
    run_dir = _run_dir(cfg)
    atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    print(f"repository: {len(repo)} questions, queries: {len(queries)}", flush=True)
    metrics, rows = evaluate_um(cfg, repo, queries, "test")
    if cfg.baseline.enabled:
        metrics.update(evaluate_rf(cfg, repo, queries, "rf"))
    metrics = dict(sorted(metrics.items()))
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_jsonl(run_dir / "predictions.jsonl", rows)
    cols = table1_columns(cfg)
    header = ["model", *[c for c, _ in cols]]
    table = [
        [name, *[_pct(metrics.get(f"{p}/{s}")) for _, s in cols]]
        for name, p in [(f"UM ({cfg.retrieval.method}, K={cfg.retrieval.k})", "test"), ("RF (TF-IDF)", "rf")]
        if any(f"{p}/{s}" in metrics for _, s in cols)
    ]
    md = _table(
        f"{cfg.experiment}: {len(repo)} repository questions, {len(queries)} queries",
        header,
        table,
    )
    atomic_write_text(run_dir / "metrics.md", md)
    _log_job(cfg, run_dir, "universal_model", metrics, header, table)
    print(md + f"\nmetrics: {run_dir / 'metrics.json'}", flush=True)
    return metrics


def scaling(cfg: Any) -> list[dict[str, Any]]:
    from feedback_nlp.cli.repo_evaluation import (
        check_labels,
        evaluate_rf,
        evaluate_um,
        load_repository_and_queries,
    )
    from feedback_nlp.core.io import atomic_write_json, atomic_write_text
    from feedback_nlp.training.logging_setup import check_logger
    from feedback_nlp.universal_model.question_repository import subsample

    check_logger(cfg.get("logger"))
    repo, queries = load_repository_and_queries(cfg)
    check_labels(cfg, repo, queries)
    check_models(cfg)
    run_dir = _run_dir(cfg, "_scaling")
    atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    sizes = sorted({min(int(s), len(repo)) for s in cfg.scaling.sizes})
    results: list[dict[str, Any]] = []
    for size in sizes:
        part = subsample(repo, size, cfg.seed)
        print(f"repository size {size}", flush=True)
        if cfg.baseline.enabled:
            results.append({"model": "RF", "size": size, "metrics": evaluate_rf(cfg, part, queries, "rf")})
        um, _ = evaluate_um(cfg, part, queries, "test")
        results.append({"model": "UM", "size": size, "metrics": um})
    cols = table1_columns(cfg)
    header = ["model", *[c for c, _ in cols]]
    results.sort(key=lambda r: (r["model"] != "RF", r["size"]))
    rows = [
        [
            f"{r['model']}({_size(r['size'])})",
            *[_pct(r["metrics"].get(f"{'rf' if r['model'] == 'RF' else 'test'}/{s}")) for _, s in cols],
        ]
        for r in results
    ]
    md = _table(
        f"{cfg.experiment}: repository-size scaling, {len(queries)} queries (002 Table 1)",
        header,
        rows,
    )
    atomic_write_text(run_dir / "scaling.md", md)
    atomic_write_json(run_dir / "scaling.json", results)
    summary = {f"{r['model']}@{r['size']}/{k}": v for r in results for k, v in r["metrics"].items()}
    _log_job(cfg, run_dir, "universal_model_scaling", summary, header, rows)
    print(md + f"\nscaling: {run_dir / 'scaling.json'}", flush=True)
    return results


def _size(n: int) -> str:
    return f"{n / 1000:g}K" if n >= 1000 else str(n)


def export(cfg: Any, out: str) -> dict[str, Any]:
    from feedback_nlp.cli.repo_evaluation import (
        export_repository,
        load_all_questions,
    )

    questions, source = load_all_questions(cfg)  # bad input stops here, before anything is written
    check_models(cfg)
    manifest = export_repository(cfg, questions, Path(out), source)
    print(f"{out}: {manifest['counts']['questions']} questions, model_version {manifest['model_version']}", flush=True)
    return manifest


def print_stats(root: str, as_json: bool = False) -> dict[str, Any]:
    import json

    from feedback_nlp.universal_model.updates import stats

    st = stats(root)
    if as_json:
        print(json.dumps(st, indent=2, sort_keys=True))
        return st
    last = st["last_update"] or {}
    print(
        f"{root}: {st['questions']} questions, {st['size_bytes'] / 1e6:.2f} MB on disk, "
        f"model_version {st['model_version']}\nlast update: {last.get('op')} of {last.get('questions')} "
        f"question(s) at {last.get('at')}"
    )
    for name, counts in st["labels"].items():
        rows = [[str(v), str(n)] for v, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]
        print(_table(f"{name}: {len(counts)} values", ["value", "questions"], rows))
    return st


def repository_command(command: str, argv: list[str]) -> Any:
    """add / delete / stats on an exported repository folder."""
    p = Parser(f"repo {command}", SUMMARIES[command])
    p.add_argument("dir", help="repository folder (feedback-nlp repo export ... out=DIR)")
    if command == "add":
        p.add_argument("--questions", required=True, help="question JSONL: id, question, one field per label")
        p.add_argument("--embedder", default=None, help="must equal the repository's embedder if given")
    elif command == "delete":
        p.add_argument("--ids", required=True, nargs="+", help="a file (one id per line, or JSONL with id) or ids")
    else:
        p.add_argument("--json", action="store_true", help="print JSON")
    a = p.parse_args(argv)
    from feedback_nlp.universal_model import updates

    if command == "stats":
        return print_stats(a.dir, a.json)
    if command == "add":
        m = updates.add(a.dir, a.questions, embedder_name=a.embedder)
    else:
        ids, where = updates.read_ids(a.ids)
        m = updates.delete(a.dir, ids, where)
    print(
        f"{a.dir}: {command} of {m['last_update']['questions']} question(s) committed; "
        f"{m['counts']['questions']} questions, model_version {m['model_version']}",
        flush=True,
    )
    return m


def update_command(argv: list[str]) -> int:
    """`repo update`: every input is checked before a model loads (exit 2 with one error line)."""
    p = Parser("repo update", SUMMARIES["update"])
    p.add_argument("dir", type=Path, help="repository folder (feedback-nlp repo export ... out=DIR)")
    p.add_argument("--transcripts", required=True, type=Path, help="new transcripts (SeaCat's training format)")
    p.add_argument("--seacat-export", required=True, type=Path, help="SeaCat export that tags the main questions")
    p.add_argument("--queries", required=True, type=Path, help="frozen query set (question JSONL with labels)")
    p.add_argument("--expect-sha256", default=None, help="refuse a query file with another sha256")
    p.add_argument("--delete-ids", type=Path, default=None, help="GDPR deletions: question or transcript ids")
    p.add_argument("--rule", action="append", default=[], help="commit only if after - before holds, e.g. x/top1>=0")
    p.add_argument("--main-question-rule", default="rule2", choices=("rule1", "rule2"))
    p.add_argument("--label-field", default="product", help="the label a transcript's label is stored under")
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds of the before/after compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto: where SeaCat and the embedder run")
    p.add_argument("--out", type=Path, default=None, help="also write update.json and update.md here")
    a = p.parse_args(argv)
    from feedback_nlp.operations import repository_update as job

    plan = job.prepare(
        a.dir,
        a.transcripts,
        a.seacat_export,
        a.queries,
        a.delete_ids,
        a.expect_sha256,
        a.main_question_rule,
        a.label_field,
        a.rule,
        a.rounds,
        a.seed,
        batch_size=a.batch_size,
        device=a.device,
    )
    report = job.run(plan)
    if a.out is not None:
        job.write_report(a.out, report)
    print(job.summary(report), end="", flush=True)
    return 0 if report["committed"] else 1


COMMANDS = ("evaluate", "scaling", "export", "add", "delete", "stats", "update")


def _log_job(
    cfg: Any, run_dir: Path, job_type: str, summary: dict[str, Any], header: list[str], rows: list[list[str]]
) -> None:
    """002 Table 1 as pictures (Top-k against k and against repository size, run_dir/plots/), then
    the metrics, the table, the figures and the repository/query files to W&B with `logger=wandb`."""
    from feedback_nlp.callbacks.plots.universal_model import plot_run
    from feedback_nlp.training import wandb_job

    paths = plot_run(run_dir)
    for path in paths:
        print(f"plot: {path}", flush=True)
    # the files the repository and the queries came from (questions, or SeaCat-tagged transcripts)
    data = {
        "train_path": cfg.repository.get("transcripts") or cfg.repository.get("path"),
        "test_path": cfg.queries.get("path"),
    }
    wandb_job.log_job(
        cfg,
        run_dir,
        job_type,
        summary,
        images={f"universal_model/{p.stem}": p for p in paths},
        tables={"universal_model/table1": (header, rows)},
        data=data,
    )


SUMMARIES = {
    "evaluate": "build the universal model from a config and score it next to the RF baselines",
    "scaling": "Top-k at growing repository sizes (002 Table 1)",
    "export": "write a repository folder from a config (out=DIR)",
    "add": "add the questions of a JSONL file to a repository folder",
    "delete": "delete questions by id from a repository folder",
    "stats": "counts, labels and the last update of a repository folder",
    "update": "the periodic update: new transcripts via SeaCat, deletions, before/after compare, atomic",
}


def usage() -> str:
    width = max(map(len, SUMMARIES))
    return "usage: feedback-nlp repo <command> ...\n\ncommands:\n" + "".join(
        f"  {name:<{width}}  {text}\n" for name, text in SUMMARIES.items()
    )


def main(argv: Sequence[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage() + "\n" + (__doc__ or ""), end="")
        if not argv:
            raise SystemExit(2)
        return None
    command = argv.pop(0)
    if command not in COMMANDS:
        print(f"error: unknown repo command {command!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        raise SystemExit(2)
    from feedback_nlp.core.errors import UserError

    try:
        if command in ("add", "delete", "stats"):
            return repository_command(command, argv)
        if command == "update":
            code = update_command(argv)
            if code:
                raise SystemExit(code)
            return None
        parser = Parser(f"repo {command}", SUMMARIES[command])
        parser.add_argument("--config", required=True, help="configs/experiment/universal_model_*.yaml")
        parser.add_argument("overrides", nargs="*", help="dotted key=value overrides (export: out=DIR)")
        args = parser.parse_args(argv)
        out = [o.split("=", 1)[1] for o in args.overrides if o.startswith("out=")]
        cfg = load_config(args.config, [o for o in args.overrides if not o.startswith("out=")])
        if command == "export":
            if not out or not out[-1]:
                raise ConfigError("export needs out=DIR (the repository folder to write)")
            return export(cfg, out[-1])
        return evaluate(cfg) if command == "evaluate" else scaling(cfg)
    except (UserError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def cli(argv: Sequence[str] | None = None) -> int:
    """`feedback-nlp repo`: results are printed and written to the run dir; the exit code says success."""
    main(argv)
    return 0

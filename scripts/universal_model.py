"""Build the universal model (002 §3) and evaluate it next to the Random Forest baselines.

    python scripts/universal_model.py --config configs/experiment/universal_model_demo.yaml
    python scripts/universal_model.py --config configs/experiment/universal_model_clinc150.yaml \
        repository.path=other/repo.jsonl queries.path=other/queries.jsonl labels.categorical=[intent] labels.numeric=[]
    python scripts/universal_model.py scaling --config configs/experiment/universal_model_clinc150.yaml

`evaluate` (default) writes run_dir/{config.yaml, metrics.json, metrics.md, predictions.jsonl}
with keys like test/top1, test/top5, test/within_5, rf/top1. `scaling` writes
run_dir/scaling.{md,json}: the universal model and the RF at growing repository sizes
(002 Table 1: 3K/6K/9K/12K).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence


from feedback_nlp.common.config import ConfigError, load_config, to_yaml


def _run_dir(cfg: Any, suffix: str = "") -> Path:
    """output_dir, or outputs/<experiment><suffix>/<UTC time> (single process: no DDP to share it with)."""
    if cfg.get("output_dir"):
        path = Path(cfg.output_dir)
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path, n = Path("outputs") / f"{cfg.experiment}{suffix}" / stamp, 1
        while path.exists():
            n += 1
            path = path.with_name(f"{stamp}-{n}")
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
    """Dense / hybrid retrieval load a sentence embedder: fail on an unavailable one before writing."""
    if cfg.retrieval.method in ("dense", "hybrid"):
        from feedback_nlp.common.model_factory import resolve_name_or_path
        resolve_name_or_path(cfg.retrieval.dense_model)


def evaluate(cfg: Any) -> dict[str, float]:
    from feedback_nlp.common.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
    from feedback_nlp.universal_model.evaluation import check_labels, evaluate_rf, evaluate_um, load_repository_and_queries

    repo, queries = load_repository_and_queries(cfg)  # bad input stops here, before any run dir exists
    check_labels(cfg, repo)
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
    table = [[name, *[_pct(metrics.get(f"{p}/{s}")) for _, s in cols]]
             for name, p in [(f"UM ({cfg.retrieval.method}, K={cfg.retrieval.k})", "test"), ("RF (TF-IDF)", "rf")]
             if any(f"{p}/{s}" in metrics for _, s in cols)]
    md = _table(f"{cfg.experiment}: {len(repo)} repository questions, {len(queries)} queries",
                ["model", *[c for c, _ in cols]], table)
    atomic_write_text(run_dir / "metrics.md", md)
    print(md + f"\nmetrics: {run_dir / 'metrics.json'}", flush=True)
    return metrics


def scaling(cfg: Any) -> list[dict[str, Any]]:
    from feedback_nlp.common.io import atomic_write_json, atomic_write_text
    from feedback_nlp.universal_model.evaluation import check_labels, evaluate_rf, evaluate_um, load_repository_and_queries
    from feedback_nlp.universal_model.question_repository import subsample

    repo, queries = load_repository_and_queries(cfg)
    check_labels(cfg, repo)
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
    results.sort(key=lambda r: (r["model"] != "RF", r["size"]))
    rows = [[f"{r['model']}({_size(r['size'])})",
             *[_pct(r["metrics"].get(f"{'rf' if r['model'] == 'RF' else 'test'}/{s}")) for _, s in cols]]
            for r in results]
    md = _table(f"{cfg.experiment}: repository-size scaling, {len(queries)} queries (002 Table 1)",
                ["model", *[c for c, _ in cols]], rows)
    atomic_write_text(run_dir / "scaling.md", md)
    atomic_write_json(run_dir / "scaling.json", results)
    print(md + f"\nscaling: {run_dir / 'scaling.json'}", flush=True)
    return results


def _size(n: int) -> str:
    return f"{n / 1000:g}K" if n >= 1000 else str(n)


def main(argv: Sequence[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("evaluate", "scaling") else "evaluate"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="configs/experiment/universal_model_*.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    args = parser.parse_args(argv)
    from feedback_nlp.common.model_factory import ModelNotAvailableError
    from feedback_nlp.datamodules.errors import DataValidationError
    try:
        cfg = load_config(args.config, args.overrides)
        return evaluate(cfg) if command == "evaluate" else scaling(cfg)
    except (ConfigError, DataValidationError, FileNotFoundError, ModelNotAvailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

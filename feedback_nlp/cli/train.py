"""Train, test and predict one experiment from a config file.

    feedback-nlp train --config configs/experiment/<name>.yaml trainer.max_epochs=3 data.batch_size=8

Why one short function (lightning-hydra-template's shape): everything task-specific lives in
the configured LightningModule and DataModule; this file only wires them, in the order that
keeps bad input from costing anything: config -> data validation -> model -> run dir -> fit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.config import ConfigError, load_config, to_yaml
from feedback_nlp.core.errors import UserError
from feedback_nlp.training.run_dir import ENV_VAR as RUN_DIR_ENV


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def resume_checkpoint(resume: str | None) -> tuple[str | None, str | None]:
    """(run_dir, ckpt_path) for `resume`: a run dir (its newest restart point: the step, last or
    SLURM requeue checkpoint) or a .ckpt file."""
    from feedback_nlp.training.run_dir import latest_checkpoint

    if not resume:
        return None, None
    path = Path(resume)
    if path.is_dir():
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise ConfigError(f"resume={resume}: no checkpoints/last.ckpt (or step.ckpt) in that run directory")
        return str(path), str(ckpt)
    if path.is_file():
        return str(path.parent.parent) if path.parent.name == "checkpoints" else None, str(path)
    raise ConfigError(f"resume={resume}: no such run directory or checkpoint file")


def check_monitors(callbacks: Any, model: Any) -> None:
    """A checkpoint or early-stopping monitor the model never logs is a config error naming the key."""
    from feedback_nlp.core.config import ConfigError

    for name in ("checkpoint", "early_stopping"):
        section = (callbacks or {}).get(name) or {}
        monitor = section.get("monitor")
        if section.get("enabled", True) is False or not monitor:
            continue
        why = model.unavailable_metric(str(monitor))
        if why:
            raise ConfigError(
                f"callbacks.{name}.monitor={monitor}: the model does not log it ({why}, or monitor val/loss)"
            )


def run(cfg: Any) -> dict[str, float]:
    import lightning as L

    from feedback_nlp.cli.main import logs_to_stdout

    logs_to_stdout()  # Lightning installs a stderr handler on import: stderr is for errors
    from lightning.pytorch.utilities import rank_zero_only

    from feedback_nlp.core.instantiate import import_object, instantiate
    from feedback_nlp.core.io import atomic_write_json, atomic_write_text
    from feedback_nlp.training.callbacks_setup import build_callbacks
    from feedback_nlp.training.checkpoints import check_checkpoint
    from feedback_nlp.training.logging_setup import build_loggers, check_logger
    from feedback_nlp.training.run_dir import global_rank, latest_checkpoint, resolve_run_dir

    check_logger(cfg.get("logger"))  # a W&B logger without a login stops before data or model work
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data, "data")
    datamodule.validate()  # bad input stops here: nothing created yet

    resume_dir, ckpt_path = resume_checkpoint(cfg.get("resume"))
    model_cls = import_object(cfg.model.class_path)
    if ckpt_path:
        check_checkpoint(ckpt_path, model_cls)
    # model and callbacks are built (their config keys checked, weights loaded) before anything is
    # written, so a bad model key or an unavailable hub model leaves no run directory behind
    model = instantiate(cfg.model, "model", **datamodule.task_info())
    contract = model.contract()  # record kind, tokenizer, exporter: declared, checked before any write
    datamodule.connect(tokenizer=contract.tokenizer, **contract.input_limits)
    trainer_kwargs = {k: v for k, v in cfg.trainer.items() if v is not None}
    if "strategy" in trainer_kwargs:  # FSDP: auto-wrap policy from this model's transformer layers
        from omegaconf import OmegaConf

        from feedback_nlp.training.strategy import build_strategy

        strategy = trainer_kwargs["strategy"]
        trainer_kwargs["strategy"] = build_strategy(
            OmegaConf.to_container(strategy, resolve=True) if OmegaConf.is_config(strategy) else strategy, model
        )
    run_dir, identity = resolve_run_dir(
        resume_dir or cfg.output_dir,
        cfg.experiment,
        cfg.get("output_root", "outputs"),
        run_id=cfg.get("run_id"),
        resuming=bool(resume_dir or ckpt_path),
        accelerator=cfg.trainer.get("accelerator"),
    )
    if not ckpt_path and (restart := latest_checkpoint(run_dir)) is not None:
        # the same job id restarted (SLURM requeue, torchrun restart, rerun of a run_id) after a
        # preemption: continue from its newest checkpoint, in the same run dir and W&B run
        ckpt_path = str(restart)
        check_checkpoint(ckpt_path, model_cls)
        print(f"# run {identity.run_id} ({identity.source}): continuing from {ckpt_path}", flush=True)
    callbacks = build_callbacks(
        cfg.get("callbacks"), run_dir, progress_bar=cfg.trainer.get("enable_progress_bar", True) is not False
    )
    check_monitors(cfg.get("callbacks"), model)
    is_zero = global_rank() == 0 and rank_zero_only.rank == 0  # type: ignore[attr-defined]  # lightning sets it at import
    if is_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    trainer = L.Trainer(
        **trainer_kwargs,
        logger=build_loggers(cfg.logger, run_dir, cfg, is_zero),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )
    log_inputs(trainer, cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = _numeric(trainer.callback_metrics)

    best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
    if cfg.get("run_test", True):
        for row in trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False):
            metrics.update(_numeric(row))
        metrics.update(_numeric(trainer.callback_metrics))
    overrides_predict = type(model).predict_step is not L.LightningModule.predict_step
    if cfg.get("run_predict", True) and overrides_predict:
        trainer.predict(model, datamodule=datamodule, ckpt_path=best, return_predictions=False)
    metrics = {k: v for k, v in sorted(metrics.items()) if not k.endswith("_step")}
    if trainer.is_global_zero:
        atomic_write_json(run_dir / "metrics.json", metrics)
        if (run_dir / "export" / "manifest.json").is_file():
            from feedback_nlp.training.export import update_metrics

            update_metrics(run_dir / "export", metrics)
        keep_reference_scores(model, run_dir)
        _print_metrics(cfg.experiment, metrics, run_dir)
    finish_wandb(trainer, metrics, run_dir, cfg)
    return metrics


def keep_reference_scores(model: Any, run_dir: Path) -> None:
    """The tested score sample (a module's `reference_scores()`, if it has one) next to the run's
    metrics and in its export: `monitor` measures production drift against it, and a re-export
    from the run directory copies it in (serving/reference_scores.py)."""
    sample = model.reference_scores() if callable(getattr(model, "reference_scores", None)) else None
    if not sample:
        return
    from feedback_nlp.core.io import atomic_write_json
    from feedback_nlp.serving.manifest import REFERENCE_FILE
    from feedback_nlp.training.export import add_reference_scores

    atomic_write_json(run_dir / REFERENCE_FILE, sample)
    if (run_dir / "export" / "manifest.json").is_file():
        add_reference_scores(run_dir / "export", sample)


def log_inputs(trainer: Any, cfg: Any) -> None:
    """W&B lineage, inputs side: the data files as dataset artifacts (rank 0, W&B only)."""
    from feedback_nlp.training.logging_setup import lineage_options, wandb_run

    run = wandb_run(trainer)
    if run is not None and lineage_options(cfg.get("logger"))["log_datasets"]:
        from feedback_nlp.training.lineage import log_datasets

        log_datasets(run, cfg.get("data"))


def finish_wandb(trainer: Any, metrics: dict[str, float], run_dir: Path | None = None, cfg: Any = None) -> None:
    """Final metrics into the W&B summary, the export as a model artifact, then close the run.

    Per-epoch metrics (train/, val/) are left out: their summary is the best value that
    BestMetrics and define_metric keep, which the last value must not overwrite.
    """
    from feedback_nlp.training.logging_setup import lineage_options, wandb_run

    run = wandb_run(trainer)
    if run is None:
        return
    run.summary.update({k: v for k, v in metrics.items() if not k.startswith(("train/", "val/"))})
    export_dir = Path(run_dir) / "export" if run_dir is not None else None
    if export_dir is not None and lineage_options((cfg or {}).get("logger"))["log_export"]:
        from feedback_nlp.training.lineage import log_export

        log_export(run, export_dir)
    run.finish()


def _print_metrics(experiment: str, metrics: dict[str, float], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{experiment}: final metrics ({run_dir})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}")
    Console().print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser("train", __doc__)
    parser.add_argument("--config", required=True, help="experiment YAML under configs/experiment/")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides (+key=value adds a key)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "--list-keys",
        action="store_true",
        help="list every config key of this experiment (type, default, value, description) and exit",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        if args.list_keys:  # reads the configured classes' signatures; builds nothing
            from feedback_nlp.cli.list_keys import render

            print(render(cfg), end="", flush=True)
            return {}
        if int(os.environ.get("LOCAL_RANK", "0")) == 0 and os.environ.get("RANK", "0") == "0":
            print(f"# resolved config ({args.config})\n{to_yaml(cfg)}", flush=True)
        if args.print_config:
            return {}
        inherited = os.environ.get(RUN_DIR_ENV)
        try:
            return run(cfg)
        finally:  # the run dir is shared with this job's ranks only, never with a later run in-process
            if inherited is None:
                os.environ.pop(RUN_DIR_ENV, None)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def cli(argv: Sequence[str] | None = None) -> int:
    """`feedback-nlp train`: the metrics stay in metrics.json, the exit code says success."""
    main(argv)
    return 0

"""Export a trained checkpoint as a self-contained serving folder (any task).

    feedback-nlp export --run-dir outputs/<experiment>/<stamp> [--out DIR] [--onnx]
    feedback-nlp export --checkpoint path/to/best.ckpt --config path/to/config.yaml --out DIR [--onnx]

Why: the same exporter the ServingExport callback uses at the end of training, for runs that
were trained without it or for a different checkpoint. With --run-dir, the checkpoint is the one
the ModelCheckpoint callback recorded as best for its monitored metric (its state is saved in
every checkpoint), never a guess from file names ("epoch=10" sorts before "epoch=9").
--onnx adds the task's ONNX graphs, each checked against the torch model with onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.config import ConfigError, to_dict
from feedback_nlp.core.errors import UserError
from feedback_nlp.training.checkpoints import CheckpointError, check_checkpoint


def _checkpoint_state(path: Path) -> dict[str, Any]:
    """(global_step, ModelCheckpoint state) of a checkpoint, read without its weights (mmap)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupt?): "
            f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    states = [v for k, v in (ckpt.get("callbacks") or {}).items() if str(k).startswith("ModelCheckpoint")]
    return {"global_step": int(ckpt.get("global_step", -1)), "states": states}


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run's ModelCheckpoint recorded as best (`best_model_path`).

    The newest checkpoint (highest global step) knows the final best; its recorded path is
    looked up by file name in <run-dir>/checkpoints, so a moved run directory still works.
    """
    folder = run_dir / "checkpoints"
    ckpts = sorted(folder.glob("*.ckpt"))
    if not ckpts:
        raise CheckpointError(f"{run_dir}: no checkpoints/*.ckpt")
    newest = max(((p, _checkpoint_state(p)) for p in ckpts), key=lambda ps: ps[1]["global_step"])
    recorded = [s for s in newest[1]["states"] if s.get("best_model_path")]
    if not recorded:
        raise CheckpointError(
            f"{run_dir}: the checkpoints record no best model (the ModelCheckpoint callback "
            f"had no `monitor`); choose one with --checkpoint"
        )
    state = recorded[0]
    best = folder / Path(str(state["best_model_path"])).name
    if not best.is_file():
        raise CheckpointError(
            f"{run_dir}: the recorded best checkpoint {best.name} (monitor "
            f"{state.get('monitor')!r}) is missing from {folder}"
        )
    return best


def _parser() -> argparse.ArgumentParser:
    p = Parser("export", __doc__)
    p.add_argument("--run-dir", type=Path)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--config", type=Path, help="the run's config.yaml (default: <run-dir>/config.yaml)")
    p.add_argument("--out", type=Path, help="export folder (default: <run-dir>/export)")
    p.add_argument("--onnx", action="store_true", help="also write the task's ONNX graphs (parity-checked)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ckpt, out = run(args)
    except (UserError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {ckpt} -> {out}")
    return 0


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from feedback_nlp.core.instantiate import import_object
    from feedback_nlp.serving.manifest import REFERENCE_FILE
    from feedback_nlp.training.export import export_module

    if args.run_dir and args.checkpoint:
        raise ConfigError("give --run-dir or --checkpoint, not both")
    if not (args.run_dir or (args.checkpoint and args.config)):
        raise ConfigError("give --run-dir, or --checkpoint with --config")
    if args.run_dir and not args.run_dir.is_dir():
        raise ConfigError(f"--run-dir {args.run_dir}: no such directory")
    if args.run_dir and not ((args.run_dir / "config.yaml").is_file() or (args.run_dir / "checkpoints").is_dir()):
        raise ConfigError(f"--run-dir {args.run_dir} is not a run directory (no config.yaml, no checkpoints/)")
    if args.out and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} exists and is not a folder")
    ckpt = args.checkpoint or best_checkpoint(args.run_dir)
    cfg_path = args.config or args.run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"config {cfg_path} not found")
    try:
        cfg = OmegaConf.load(cfg_path)
        class_path = cfg.model.class_path
    except (OmegaConfBaseException, AttributeError, ValueError) as e:
        raise ConfigError(f"config {cfg_path}: no readable model.class_path ({e})") from None
    cls = import_object(class_path)
    check_checkpoint(ckpt, cls)
    try:
        module = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    except (KeyError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {ckpt} does not fit {class_path}: {str(e).splitlines()[0][:300]}") from None
    base = args.run_dir or ckpt.parent.parent
    out = args.out or base / "export"
    metrics_path = base / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    reference = None  # the tested score sample: only the run's best checkpoint was tested
    if args.run_dir and (args.run_dir / REFERENCE_FILE).is_file():
        reference = json.loads((args.run_dir / REFERENCE_FILE).read_text(encoding="utf-8"))
    export_module(module, out, config=to_dict(cfg, resolve=False), metrics=metrics, onnx=args.onnx, reference=reference)
    return ckpt, out

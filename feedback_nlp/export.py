"""Export a trained checkpoint as a self-contained serving folder (any task).

    python export.py --run-dir outputs/<experiment>/<stamp> [--out DIR]
    python export.py --checkpoint path/to/best.ckpt --config path/to/config.yaml --out DIR

Why: the same exporter the ServingExport callback uses at the end of training, for runs that
were trained without it or for a different checkpoint than the best one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from feedback_nlp.common.checkpoints import CheckpointError, check_checkpoint
from feedback_nlp.common.config import ConfigError
from feedback_nlp.common.export import export_module
from feedback_nlp.common.instantiate import import_object


def best_checkpoint(run_dir: Path) -> Path:
    ckpts = sorted((run_dir / "checkpoints").glob("best*.ckpt")) or sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if not ckpts:
        raise CheckpointError(f"{run_dir}: no checkpoints/*.ckpt")
    return ckpts[-1]


def main(argv: Sequence[str] | None = None) -> int:
    from omegaconf import OmegaConf

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--config", type=Path, help="the run's config.yaml (default: <run-dir>/config.yaml)")
    p.add_argument("--out", type=Path, help="export folder (default: <run-dir>/export)")
    args = p.parse_args(argv)
    try:
        if not (args.run_dir or (args.checkpoint and args.config)):
            raise ConfigError("give --run-dir, or --checkpoint with --config")
        ckpt = args.checkpoint or best_checkpoint(args.run_dir)
        cfg_path = args.config or args.run_dir / "config.yaml"
        if not cfg_path.is_file():
            raise ConfigError(f"config {cfg_path} not found")
        cfg = OmegaConf.load(cfg_path)
        cls = import_object(cfg.model.class_path)
        check_checkpoint(ckpt, cls)
        module = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        out = args.out or (args.run_dir or ckpt.parent.parent) / "export"
        metrics_path = (args.run_dir or ckpt.parent.parent) / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        export_module(module, out, config=OmegaConf.to_container(cfg), metrics=metrics)
    except (ConfigError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {ckpt} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

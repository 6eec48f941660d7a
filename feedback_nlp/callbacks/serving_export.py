"""Export the best model for serving when training ends (see feedback_nlp/training/export.py).

Why: users ship checkpoints to serving; exporting in the run itself means every finished run
has a servable folder next to its metrics, built from the best (not the last) weights. The
module's declared exporter is used (TaskModule.contract); a module without one fails at the
start of the run, not silently here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from feedback_nlp.core.config import to_dict
from feedback_nlp.training.export import export_module


class ServingExport(Callback):
    """When fit ends, the best checkpoint's weights as a serving export folder in the run dir.

    Args:
        run_dir: The run directory (set by the train command, not in configs).
        dirname: Name of the export folder in the run directory.
        onnx: Also export the ONNX graph (checked against eager outputs).
    """

    def __init__(self, run_dir: str, dirname: str = "export", onnx: bool = False):
        self.out_dir = Path(run_dir) / dirname
        self.onnx = onnx

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if best:
            ckpt = torch.load(best, map_location="cpu", weights_only=True)
            pl_module.load_state_dict(ckpt["state_dict"])
            pl_module.on_load_checkpoint(ckpt)  # task state kept outside state_dict (e.g. threshold)
        if trainer.is_global_zero:
            from omegaconf import OmegaConf

            cfg_path = self.out_dir.parent / "config.yaml"
            config = to_dict(OmegaConf.load(cfg_path), resolve=False) if cfg_path.is_file() else {}
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
            export_module(pl_module, self.out_dir, config=config, metrics=metrics, onnx=self.onnx)
        trainer.strategy.barrier("serving_export")

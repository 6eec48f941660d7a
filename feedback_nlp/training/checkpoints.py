"""Check a checkpoint before Lightning loads it.

Why: a truncated file or one written by another task otherwise fails deep inside torch with
an unreadable traceback; here it fails with the path and what is wrong. Loading uses
`weights_only=True`, so a checkpoint can never run arbitrary code by unpickling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class CheckpointError(RuntimeError):
    pass


def check_checkpoint(path: str | Path, model_cls: Any) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupt?): "
            f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"checkpoint {path} has no state_dict: not a Lightning checkpoint")
    task = ckpt.get("task") or (ckpt.get("hyper_parameters") or {}).get("task")
    want = getattr(model_cls, "task", None)
    if want and task and task != want:
        raise CheckpointError(f"checkpoint {path} was written by task '{task}', but this experiment trains '{want}'")
    return ckpt


def _model_checkpoint() -> Any:
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint


class StepCheckpoint(_model_checkpoint()):  # type: ignore[misc]
    """`checkpoints/step.ckpt` every `every_n_train_steps` optimizer steps (0: off), overwritten.

    Why: the epoch-end checkpoint loses a whole preempted epoch, hours on 16 GPUs. This one is a
    restart point only (no monitor, no `last.ckpt`, which belongs to the best-model callback);
    it carries the data position (the DataModule's state), so a resumed job continues with the
    next batch of the same epoch. `resume=<run dir>` takes the newest of step.ckpt, last.ckpt and
    SLURM's requeue checkpoint. Lightning writes through a temp file and a rename, so a kill
    during the write leaves the previous file.

    Args:
        every_n_train_steps: Optimizer steps between two restart checkpoints (0: off).
        dirpath: Folder of step.ckpt (null: the run's checkpoints/ folder).
    """

    FILENAME = "step"

    def __init__(self, every_n_train_steps: int = 0, dirpath: str | None = None):
        if every_n_train_steps < 0:
            from feedback_nlp.core.config import ConfigError

            raise ConfigError(f"callbacks.step_checkpoint.every_n_train_steps must be >= 0, got {every_n_train_steps}")
        super().__init__(
            dirpath=dirpath,
            filename=self.FILENAME,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_train_steps=every_n_train_steps,
            every_n_epochs=0,
            auto_insert_metric_name=False,
        )

"""A restart point every N optimizer steps (config: `callbacks.step_checkpoint`).

Why: the epoch-end checkpoint loses a whole preempted epoch, hours on 16 GPUs; see the class.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
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

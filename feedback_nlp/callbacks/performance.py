"""GPU speed and memory knobs that apply to any task model: torch.compile and gradient
checkpointing of its Hugging Face backbones (config: `callbacks.performance.*`).

Why a callback and not model arguments: the knobs concern how a backbone runs, not what the
task computes, and every task has one or more `transformers` backbones (BERT encoder, T5/BART,
the SimCSE encoder); finding them here keeps the task modules free of device concerns.
Both change speed and memory only: the loss of a step is the same with or without them
(tests/test_gpu_knobs.py checks this on CPU).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from feedback_nlp.core.config import ConfigError
from feedback_nlp.training.backbones import hf_backbones


class Performance(Callback):
    """`compile`: torch.compile each backbone in place (parameter names and checkpoints unchanged;
    the first steps are slower while it compiles). `gradient_checkpointing`: recompute each
    layer's activations in the backward pass (about 30% more compute for a fraction of the
    activation memory: longer inputs or a larger per-device batch on the same GPU).

    Args:
        compile: torch.compile each Hugging Face backbone of the model.
        compile_mode: torch.compile mode (default, reduce-overhead, max-autotune; null: torch's default).
        compile_backend: torch.compile backend.
        gradient_checkpointing: Recompute backbone activations in the backward pass (less memory, more compute).
    """

    def __init__(
        self,
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
        gradient_checkpointing: bool = False,
    ):
        self.compile, self.compile_mode, self.compile_backend = compile, compile_mode, compile_backend
        self.gradient_checkpointing = gradient_checkpointing
        self._applied = False

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self._applied or not (self.compile or self.gradient_checkpointing):
            return
        backbones = hf_backbones(pl_module)
        if not backbones:
            raise ConfigError(
                f"callbacks.performance: {type(pl_module).__name__} has no Hugging Face backbone "
                "to compile or checkpoint"
            )
        for m in backbones:
            if self.gradient_checkpointing:
                if not getattr(m, "supports_gradient_checkpointing", False):
                    raise ConfigError(
                        f"callbacks.performance.gradient_checkpointing: {type(m).__name__} does not "
                        "support gradient checkpointing"
                    )
                if hasattr(m, "activation_checkpointing_enable"):  # transformers >= 5 name
                    m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
                else:
                    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
                if getattr(m.config, "use_cache", None):
                    m.config.use_cache = False  # a KV cache is useless in training and conflicts with recompute
            if self.compile:
                m.compile(mode=self.compile_mode, backend=self.compile_backend)
        self._applied = True

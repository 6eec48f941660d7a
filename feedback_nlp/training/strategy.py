"""A Trainer strategy from config: a name ("ddp", "auto") or a mapping for FSDP with a
transformer-layer auto-wrap policy.

Why: FSDP shards well only when every transformer layer is its own FSDP unit, and which class
that is depends on the model (BertLayer, T5Block, BartEncoderLayer...). The config says
`auto_wrap_policy: transformer_layers`; the classes are read from the built model here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from feedback_nlp.core.config import ConfigError


def build_strategy(spec: Any, model: nn.Module) -> Any:
    if not isinstance(spec, Mapping):
        return spec
    options = dict(spec)
    name = options.pop("name", None)
    if name != "fsdp":
        raise ConfigError(f"trainer.strategy: a mapping must have name: fsdp, got {name!r}")
    from lightning.pytorch.strategies import FSDPStrategy

    from feedback_nlp.training.backbones import transformer_layer_classes

    policy = options.pop("auto_wrap_policy", "transformer_layers")
    checkpointing = bool(options.pop("activation_checkpointing", False))
    if policy == "transformer_layers":
        layers = transformer_layer_classes(model)
        if not layers:
            raise ConfigError(
                f"trainer.strategy.auto_wrap_policy=transformer_layers: {type(model).__name__} "
                "has no Hugging Face transformer layers"
            )
        options["auto_wrap_policy"] = layers
        if checkpointing:
            options["activation_checkpointing_policy"] = layers
    elif policy is not None:
        raise ConfigError(f"trainer.strategy.auto_wrap_policy must be transformer_layers or null, got {policy!r}")
    return FSDPStrategy(**options)

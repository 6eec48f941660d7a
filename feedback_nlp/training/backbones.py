"""The Hugging Face backbones inside a task model, and their repeated transformer layers.

Why shared: the FSDP auto-wrap policy (training/strategy.py) and the speed knobs callback
(callbacks/performance.py) both need the same layer classes; defining them here keeps the
strategy from importing a callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def hf_backbones(module: nn.Module) -> list[PreTrainedModel]:
    """The outermost `transformers.PreTrainedModel` submodules (a T5 inside a task, not its blocks)."""
    from transformers import PreTrainedModel

    found: list[PreTrainedModel] = []

    def visit(m: nn.Module) -> None:
        if isinstance(m, PreTrainedModel):
            found.append(m)
            return
        for child in m.children():
            visit(child)

    visit(module)
    return found


def transformer_layer_classes(module: nn.Module) -> set[type]:
    """Classes of the repeated transformer layers (the backbones' `_no_split_modules`, e.g. BertLayer,
    T5Block): the unit FSDP wraps and activation checkpointing recomputes."""
    names = {n for m in hf_backbones(module) for n in (getattr(m, "_no_split_modules", None) or [])}
    # the layer stack: entries of a ModuleList (_no_split_modules also names one-off blocks
    # such as BertEmbeddings, which are not worth an FSDP unit of their own)
    return {
        type(m)
        for stack in module.modules()
        if isinstance(stack, nn.ModuleList)
        for m in stack
        if type(m).__name__ in names
    }

"""Pad token tensors to a multiple of a length (tensor-core friendly shapes on GPU).

Why in the ground layer: the DataModules' collators and SeaCat's transcript features (used by
training and by the serving predictor) pad the same way; one definition keeps train and serve
shapes equal.
"""

from __future__ import annotations

import torch


def pad_last_dim(t: torch.Tensor, multiple: int | None, value: int) -> torch.Tensor:
    """Pad the sequence dimension up to a multiple (8: tensor-core friendly shapes on GPU).

    Why after tokenizing, not `tokenizer(pad_to_multiple_of=...)`: the tokenizer refuses a
    truncation length that is not itself a multiple, and rounding that length up would let
    longer inputs through; padding afterwards changes the shape only, never the tokens."""
    if not multiple or t.shape[-1] % multiple == 0:
        return t
    extra = multiple - t.shape[-1] % multiple
    return torch.nn.functional.pad(t, (0, extra), value=value)


def pad_encoding(enc: dict, multiple: int | None, pad_id: int | None) -> dict:
    """`pad_last_dim` for a tokenizer's output: pad ids for input_ids, 0 for the masks/type ids."""
    if not multiple:
        return enc
    out = dict(enc)
    for key, value in out.items():
        if isinstance(value, torch.Tensor) and value.dim() == 2:
            out[key] = pad_last_dim(value, multiple, (pad_id or 0) if key == "input_ids" else 0)
    return out

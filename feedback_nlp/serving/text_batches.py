"""Tokenize texts in chunks for an HF encoder, on the predictor's device.

Why shared: the safety and MCML predictors both score one text per record through an encoder
with a torch or an ONNX backend; only their heads and rows differ.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence, TypeVar

import torch

from feedback_nlp.serving.runtime import RuntimeOptions


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def run_graph(
    module: torch.nn.Module | None, session: Any, inputs: dict[str, torch.Tensor], options: RuntimeOptions
) -> torch.Tensor:
    """One batch through the torch module (device, dtype) or the ONNX session; float32 on CPU out."""
    if session is not None:
        return torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])
    assert module is not None
    with torch.inference_mode():
        out: torch.Tensor = module(*(v.to(options.device) for v in inputs.values()))  # a module call is Any
        return out.float().cpu()


M = TypeVar("M", bound=torch.nn.Module)


def place(module: M, options: RuntimeOptions) -> M:
    return module.to(device=options.device, dtype=options.torch_dtype()).eval()

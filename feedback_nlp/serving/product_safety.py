"""Serve the product-safety classifier (001 §3.1, §5) from its export folder.

Why: 001 §5 classifies incoming claims in real time with versioned models; the export holds the
encoder (HF layout), the linear head and the dev-chosen threshold (in the head's safetensors
metadata, so the model version changes whenever the decision rule does) and nothing pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import nn

from feedback_nlp.core.model_factory import save_tokenizer
from feedback_nlp.nets.product_safety import SafetyProbability
from feedback_nlp.serving.manifest import ExportError
from feedback_nlp.serving.onnx_export import OnnxGraph, session
from feedback_nlp.serving.runtime import RuntimeOptions
from feedback_nlp.serving.text_batches import chunks, encode, place, run_graph

HEAD_FILE, INFO_FILE, ONNX_FILE = "classifier_head.safetensors", "classifier.json", "safety.onnx"
PROBE = ["The heel broke off and I fell down the stairs.", "Der Stoff ist zu dünn.", "ok"]
OTHER = [
    "a",
    "Mein Kind hat sich an einer scharfen Kante geschnitten, es hat stark geblutet und wir mussten "
    "ins Krankenhaus fahren.",
    "It smells of petrol.",
    "x y",
    "Too small.",
]


def write_export(
    out_dir: Path,
    encoder: Any,
    head: nn.Linear,
    tokenizer: Any,
    labels: Sequence[str],
    threshold: float,
    max_length: int,
    target_recall: float | None = None,
    dev_recall: float | None = None,
) -> dict[str, Any]:
    """Write the serving folder's files; return the manifest fields."""
    save_weights(out_dir, encoder, head, threshold)
    save_tokenizer(tokenizer, out_dir)
    info = {
        "task": "product_safety",
        "labels": list(labels),
        "threshold": float(threshold),
        "max_length": max_length,
        "pooling": "cls",
        "head": HEAD_FILE,
        "target_recall": target_recall,
        "dev_recall": dev_recall,
    }
    (out_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def save_weights(out_dir: Path, encoder: Any, head: nn.Linear, threshold: float) -> None:
    from safetensors.torch import save_file

    encoder.save_pretrained(out_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(out_dir / HEAD_FILE), metadata={"threshold": repr(float(threshold))})


class ProductSafetyPredictor:
    """Rows: id, probability of product safety, decision, label, threshold."""

    def __init__(
        self,
        tokenizer: Any,
        labels: Sequence[str],
        threshold: float,
        max_length: int,
        options: RuntimeOptions,
        graph: SafetyProbability | None = None,
        onnx: Any = None,
    ):
        self.tokenizer, self.labels, self.threshold, self.max_length = tokenizer, list(labels), threshold, max_length
        self.options, self.graph, self.onnx = options, graph, onnx

    @classmethod
    def load(cls, export_dir: Path, options: RuntimeOptions = RuntimeOptions()) -> ProductSafetyPredictor:
        from safetensors.torch import load_file

        from feedback_nlp.core.model_factory import load_encoder, load_tokenizer

        d = Path(export_dir)
        if not (d / INFO_FILE).is_file():
            raise ExportError(f"{d} is not a product-safety export (no {INFO_FILE})")
        info = json.loads((d / INFO_FILE).read_text(encoding="utf-8"))
        tokenizer = load_tokenizer(str(d))
        if options.backend == "onnx":
            return cls(
                tokenizer,
                info["labels"],
                float(info["threshold"]),
                int(info["max_length"]),
                options,
                onnx=session(d / ONNX_FILE, options.onnx_providers()),
            )
        encoder = load_encoder(str(d), use_safetensors=True)
        state = load_file(str(d / info.get("head", HEAD_FILE)))
        head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        head.load_state_dict(state)
        graph = place(SafetyProbability(encoder, head), options)
        return cls(tokenizer, info["labels"], float(info["threshold"]), int(info["max_length"]), options, graph)

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        out: list[float] = []
        for part in chunks(texts, self.options.batch_size):
            out += run_graph(
                self.graph, self.onnx, encode(self.tokenizer, part, self.max_length), self.options
            ).tolist()
        return out

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        probs = self.probabilities([r.text for r in records])
        t = self.threshold
        return [
            {"id": r.id, "label": self.labels[int(p >= t)], "probability": p, "decision": int(p >= t), "threshold": t}
            for r, p in zip(records, probs)
        ]

    def onnx_graphs(self, texts: Sequence[str] = ()) -> list[OnnxGraph]:
        if self.graph is None:
            raise ExportError("ONNX graphs are built from the torch backend")
        graph = SafetyProbability(self.graph.encoder, self.graph.head).float().cpu().eval()
        probe = list(texts) or PROBE
        return [
            OnnxGraph(
                ONNX_FILE,
                graph,
                encode(self.tokenizer, probe, self.max_length),
                ["probability"],
                checks=[encode(self.tokenizer, OTHER, self.max_length)],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "probability": {0: "batch"},
                },
            )
        ]


def load(export_dir: Path, manifest: Mapping[str, Any], options: RuntimeOptions) -> ProductSafetyPredictor:
    return ProductSafetyPredictor.load(export_dir, options)

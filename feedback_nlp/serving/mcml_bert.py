"""Serve the MCML-BERT baseline (000 §5.1): L-Coarse issue sets from one sigmoid per label.

Why: the baseline's predictions must be scored and served like the seq2seq model's, so the
two can be compared on live traffic; its export is an HF encoder, the head as safetensors and
the label set, threshold and pooling as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.core.model_factory import save_tokenizer
from feedback_nlp.nets.mcml_bert import McmlNet, McmlProbabilities, predicted_label_sets
from feedback_nlp.serving.manifest import ExportError
from feedback_nlp.serving.onnx_export import OnnxGraph, session
from feedback_nlp.serving.runtime import RuntimeOptions
from feedback_nlp.serving.text_batches import chunks, encode, place, run_graph

HEAD_FILE, SETTINGS_FILE, ONNX_FILE = "mcml_head.safetensors", "mcml.json", "mcml.onnx"
PROBE = ["The zipper broke after one week.", "Delivery was late and the box was damaged.", "ok"]
OTHER = [
    "a",
    "The colour is different from the picture and it smells of chemicals, I want a refund now.",
    "Too small.",
    "x y",
    "Great",
]


def write_export(
    out_dir: Path,
    net: McmlNet,
    tokenizer: Any,
    labels: Sequence[str],
    threshold: float,
    at_least_one: bool,
    max_length: int,
) -> dict[str, Any]:
    from safetensors.torch import save_file

    net.encoder.save_pretrained(out_dir)
    save_tokenizer(tokenizer, out_dir)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.head.state_dict().items()}, str(out_dir / HEAD_FILE))
    settings = {
        "task": "mcml_bert",
        "labels": list(labels),
        "pooling": net.pooling,
        "threshold": float(threshold),
        "at_least_one": bool(at_least_one),
        "max_length": int(max_length),
        "head": HEAD_FILE,
    }
    (out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return settings


class McmlBertPredictor:
    """Rows: id, coarse (the predicted label set, most probable first), probabilities per label."""

    def __init__(
        self,
        tokenizer: Any,
        settings: Mapping[str, Any],
        options: RuntimeOptions,
        graph: McmlProbabilities | None = None,
        onnx: Any = None,
    ):
        self.tokenizer, self.settings, self.options, self.graph, self.onnx = (
            tokenizer,
            dict(settings),
            options,
            graph,
            onnx,
        )
        self.labels = list(settings["labels"])

    @classmethod
    def load(cls, export_dir: Path, options: RuntimeOptions = RuntimeOptions()) -> McmlBertPredictor:
        from safetensors.torch import load_file

        from feedback_nlp.core.model_factory import load_encoder, load_tokenizer

        d = Path(export_dir)
        if not (d / SETTINGS_FILE).is_file():
            raise ExportError(f"{d} is not an MCML-BERT export (no {SETTINGS_FILE})")
        settings = json.loads((d / SETTINGS_FILE).read_text(encoding="utf-8"))
        tokenizer = load_tokenizer(str(d))
        if options.backend == "onnx":
            return cls(tokenizer, settings, options, onnx=session(d / ONNX_FILE, options.onnx_providers()))
        net = McmlNet(load_encoder(str(d), use_safetensors=True), len(settings["labels"]), settings["pooling"], 0.0)
        net.head.load_state_dict(load_file(str(d / settings.get("head", HEAD_FILE))))
        return cls(tokenizer, settings, options, place(McmlProbabilities(net), options))

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for part in chunks(records, self.options.batch_size):
            probs = run_graph(
                self.graph,
                self.onnx,
                encode(self.tokenizer, [r.text for r in part], self.settings["max_length"]),
                self.options,
            )
            sets = predicted_label_sets(probs, self.labels, self.settings["threshold"], self.settings["at_least_one"])
            rows += [
                {"id": r.id, "coarse": s, "probabilities": dict(zip(self.labels, p))}
                for r, s, p in zip(part, sets, probs.tolist())
            ]
        return rows

    def onnx_graphs(self, texts: Sequence[str] = ()) -> list[OnnxGraph]:
        if self.graph is None:
            raise ExportError("ONNX graphs are built from the torch backend")
        graph = McmlProbabilities(self.graph.net).float().cpu().eval()
        n = self.settings["max_length"]
        return [
            OnnxGraph(
                ONNX_FILE,
                graph,
                encode(self.tokenizer, list(texts) or PROBE, n),
                ["probabilities"],
                checks=[encode(self.tokenizer, OTHER, n)],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "probabilities": {0: "batch"},
                },
            )
        ]


def load(export_dir: Path, manifest: Mapping[str, Any], options: RuntimeOptions) -> McmlBertPredictor:
    return McmlBertPredictor.load(export_dir, options)

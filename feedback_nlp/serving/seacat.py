"""Serve SeaCat (002 §2) from its export folder: product/service label and the main question.

Why: the question repository (002 §3.1) is built by running a trained SeaCat over many
transcripts, often on another machine than the one that trained it. The export holds the
encoder + tokenizer (`encoder/`), the key vector and classifier (safetensors) and the settings
(JSON); loading it never unpickles anything. Sentence splitting and tokenization stay in Python
(datamodules/seacat_inputs.py); the ONNX graph starts at token ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from feedback_nlp.core.model_factory import save_tokenizer
from feedback_nlp.core.records import TranscriptRecord, Turn
from feedback_nlp.datamodules.seacat_inputs import collate_features, featurize
from feedback_nlp.nets.seacat import NET_INPUTS, SeaCatNet, prediction_rows
from feedback_nlp.serving.manifest import ExportError
from feedback_nlp.serving.onnx_export import OnnxGraph, session
from feedback_nlp.serving.runtime import RuntimeOptions

HEAD_FILE, SETTINGS_FILE, ENCODER_DIR, ONNX_FILE = "seacat_head.safetensors", "seacat.json", "encoder", "seacat.onnx"
ONNX_TOLERANCE = 1e-4


def write_export(out_dir: Path, net: SeaCatNet, tokenizer: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Write encoder/, seacat_head.safetensors and seacat.json; return the manifest fields."""
    from safetensors.torch import save_file

    from feedback_nlp.core.io import atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    net.encoder.save_pretrained(out_dir / ENCODER_DIR, safe_serialization=True)
    save_tokenizer(tokenizer, out_dir / ENCODER_DIR)
    head = {
        "key": net.key.detach().cpu().contiguous(),
        "classifier.weight": net.classifier.weight.detach().cpu().contiguous(),
        "classifier.bias": net.classifier.bias.detach().cpu().contiguous(),
    }
    save_file(head, str(out_dir / HEAD_FILE))
    settings = {"task": "seacat", **settings}
    atomic_write_json(out_dir / SETTINGS_FILE, settings)
    return {**settings, "files": [ENCODER_DIR, HEAD_FILE, SETTINGS_FILE]}


def _probe_transcripts() -> list[TranscriptRecord]:
    """Transcripts for the ONNX parity check: two batch shapes, repeated and unique sentences."""
    c, a = "customer", "agent"
    texts = [
        [(c, "Hi. Where is my package? It was due Monday."), (a, "Let me check that for you."), (c, "Thanks.")],
        [
            (a, "Hello, how can I help?"),
            (c, "My card was charged twice. Can you refund one?"),
            (a, "Sure. Done."),
            (c, "Thanks."),
        ],
        [(c, "The screen is broken.")],
        [
            (c, "Hi."),
            (c, "I want to return the shoes, they are too small and the sole came off."),
            (a, "Sorry to hear that. I will send a label."),
            (a, "Anything else?"),
            (c, "No, thanks."),
        ],
        [(a, "Hi."), (c, "Cancel my order please.")],
    ]
    return [TranscriptRecord(f"probe{i}", tuple(Turn(s, t) for s, t in turns)) for i, turns in enumerate(texts)]


class SeaCatPredictor:
    """`predict(transcripts)` -> rows with label, label distribution, sentence weights and the
    rule 1 / rule 2 main question (the rows SeaCat.predict_step writes)."""

    def __init__(
        self,
        net: SeaCatNet | None,
        tokenizer: Any,
        settings: Mapping[str, Any],
        batch_size: int = 16,
        options: RuntimeOptions | None = None,
        onnx: Any = None,
    ):
        self.options = options or RuntimeOptions(batch_size=batch_size)
        self.net = net.eval() if net is not None else None
        self.tokenizer, self.settings, self.batch_size, self.onnx = tokenizer, dict(settings), batch_size, onnx
        self.labels = list(settings["labels"])

    @classmethod
    def load(cls, export_dir: Path, batch_size: int = 16, options: RuntimeOptions | None = None) -> SeaCatPredictor:
        from safetensors.torch import load_file

        from feedback_nlp.core.model_factory import load_encoder, load_tokenizer

        export_dir, options = Path(export_dir), options or RuntimeOptions(batch_size=batch_size)
        path = export_dir / SETTINGS_FILE
        if not path.is_file():
            raise ExportError(f"{export_dir} is not a SeaCat export (no {SETTINGS_FILE})")
        settings = json.loads(path.read_text(encoding="utf-8"))
        if settings.get("task") != "seacat":
            raise ValueError(f"{export_dir} holds a '{settings.get('task')}' export, not seacat")
        tokenizer = load_tokenizer(str(export_dir / ENCODER_DIR))
        if options.backend == "onnx":
            return cls(
                None,
                tokenizer,
                settings,
                batch_size,
                options,
                onnx=session(export_dir / ONNX_FILE, options.onnx_providers()),
            )
        encoder = load_encoder(str(export_dir / ENCODER_DIR))
        net = SeaCatNet(
            encoder,
            len(settings["labels"]),
            settings["max_sentences"],
            settings["pooling"],
            settings["position_embedding"],
            dropout=0.0,
        )
        head = load_file(str(export_dir / HEAD_FILE))
        with torch.no_grad():
            net.key.copy_(head["key"])
            net.classifier.weight.copy_(head["classifier.weight"])
            net.classifier.bias.copy_(head["classifier.bias"])
        net = net.to(device=options.device, dtype=options.torch_dtype())
        return cls(net, tokenizer, settings, batch_size, options)

    def batches(self, records: Sequence[Any]) -> Iterable[dict[str, Any]]:
        for i in range(0, len(records), self.batch_size):
            feats = [featurize(t, self.settings["max_sentences"]) for t in records[i : i + self.batch_size]]
            yield collate_features(feats, self.tokenizer, self.settings["max_tokens"])

    def _run(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.onnx is not None:
            logits, weights = self.onnx.run(None, {k: batch[k].numpy() for k in NET_INPUTS})
            return torch.from_numpy(logits), torch.from_numpy(weights)
        assert self.net is not None
        device = next(self.net.parameters()).device
        with torch.inference_mode():
            logits, weights = self.net(**{k: batch[k].to(device) for k in NET_INPUTS})
        return logits.float(), weights.float()

    def predict(self, records: Sequence[Any], progress: bool = False) -> list[dict[str, Any]]:
        if self.net is not None:
            self.net.eval()
        batches: Iterable[dict[str, Any]] = self.batches(records)
        if progress:
            from rich.progress import track

            batches = track(batches, total=-(-len(records) // self.batch_size), description="SeaCat main questions")
        rows: list[dict[str, Any]] = []
        for batch in batches:
            logits, weights = self._run(batch)
            rows.extend(prediction_rows(batch, logits, weights, self.labels, self.settings["main_question_window"]))
        return rows

    def onnx_graphs(self, examples: Sequence[Any] = ()) -> list[OnnxGraph]:
        """SeaCatNet with every axis dynamic (dynamo exporter), checked on a second batch shape."""
        if self.net is None:
            raise ExportError("ONNX graphs are built from the torch backend")
        net = self.net.float().cpu().eval()
        net.cache_size = 0  # the embedding cache is Python, not graph
        feats = [featurize(t, self.settings["max_sentences"]) for t in (examples or _probe_transcripts())]
        n = self.settings["max_tokens"]
        half = collate_features(feats[: max(1, len(feats) // 2)], self.tokenizer, n)
        full = collate_features(feats, self.tokenizer, n)
        dims = {name: torch.export.Dim(name) for name in ("batch", "sentences", "unique", "tokens", "real")}
        dynamic = {
            "input_ids": {0: dims["unique"], 1: dims["tokens"]},
            "attention_mask": {0: dims["unique"], 1: dims["tokens"]},
            "sentence_source": {0: dims["real"]},
            "sentence_index": {0: dims["real"]},
            "sentence_mask": {0: dims["batch"], 1: dims["sentences"]},
            "positions": {0: dims["batch"], 1: dims["sentences"]},
        }
        return [
            OnnxGraph(
                ONNX_FILE,
                net,
                {k: full[k] for k in NET_INPUTS},
                ["logits", "weights"],
                checks=[{k: half[k] for k in NET_INPUTS}],
                dynamic_shapes=dynamic,
            )
        ]


def load(export_dir: Path, manifest: Mapping[str, Any], options: RuntimeOptions) -> SeaCatPredictor:
    return SeaCatPredictor.load(export_dir, options.batch_size, options)

"""Serve SeaCat from a self-contained export folder: tag main questions, predict labels.

Why: the question repository (002 §3.1) is built by running a trained SeaCat over many
transcripts, often on another machine than the one that trained it. The export holds
everything needed (encoder + tokenizer via `save_pretrained`, the key vector and classifier
as safetensors, the settings as JSON), and loading it never unpickles anything.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from feedback_nlp.common.io import atomic_write_json
from feedback_nlp.common.model_factory import load_encoder, load_tokenizer
from feedback_nlp.datamodules.records import Transcript
from feedback_nlp.datamodules.transcripts import collate_features, featurize

HEAD_FILE, SETTINGS_FILE, ENCODER_DIR = "seacat_head.safetensors", "seacat.json", "encoder"


def export_seacat(module: Any, out_dir: Path, onnx_examples: Sequence[Transcript] = ()) -> dict[str, Any]:
    """Write encoder/, seacat_head.safetensors and seacat.json into `out_dir` (and seacat.onnx,
    checked against eager, when example transcripts are given); return manifest fields."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    net, hp = module.net, module.hparams
    net.encoder.save_pretrained(out_dir / ENCODER_DIR, safe_serialization=True)
    module.tokenizer.save_pretrained(out_dir / ENCODER_DIR)
    head = {"key": net.key.detach().cpu().contiguous(),
            "classifier.weight": net.classifier.weight.detach().cpu().contiguous(),
            "classifier.bias": net.classifier.bias.detach().cpu().contiguous()}
    save_file(head, str(out_dir / HEAD_FILE))
    settings = {"task": module.task, "labels": list(module.labels), "max_sentences": hp.max_sentences,
                "max_tokens": hp.max_tokens, "pooling": hp.pooling, "position_embedding": hp.position_embedding,
                "main_question_window": hp.main_question_window, "pretrained": hp.pretrained}
    atomic_write_json(out_dir / SETTINGS_FILE, settings)
    manifest = {**settings, "files": [ENCODER_DIR, HEAD_FILE, SETTINGS_FILE]}
    if onnx_examples:
        manifest.update(export_onnx(net, module.tokenizer, settings, out_dir / ONNX_FILE, onnx_examples))
        manifest["files"].append(ONNX_FILE)
    return manifest


class SeaCatPredictor:
    """`predict(transcripts)` -> rows with label, label distribution, sentence weights and the
    rule 1 / rule 2 main question (same rows as SeaCat.predict_step)."""

    def __init__(self, net: Any, tokenizer: Any, settings: dict[str, Any], batch_size: int = 16):
        self.net, self.tokenizer, self.settings, self.batch_size = net.eval(), tokenizer, settings, batch_size
        self.labels = list(settings["labels"])

    @classmethod
    def load(cls, export_dir: Path, batch_size: int = 16) -> "SeaCatPredictor":
        from safetensors.torch import load_file

        from feedback_nlp.lightning_modules.seacat import SeaCatNet

        export_dir = Path(export_dir)
        path = export_dir / SETTINGS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{export_dir} is not a SeaCat export (no {SETTINGS_FILE})")
        settings = json.loads(path.read_text(encoding="utf-8"))
        if settings.get("task") != "seacat":
            raise ValueError(f"{export_dir} holds a '{settings.get('task')}' export, not seacat")
        encoder = load_encoder(str(export_dir / ENCODER_DIR))
        tokenizer = load_tokenizer(str(export_dir / ENCODER_DIR))
        net = SeaCatNet(encoder, len(settings["labels"]), settings["max_sentences"], settings["pooling"],
                        settings["position_embedding"], dropout=0.0)
        head = load_file(str(export_dir / HEAD_FILE))
        with torch.no_grad():
            net.key.copy_(head["key"])
            net.classifier.weight.copy_(head["classifier.weight"])
            net.classifier.bias.copy_(head["classifier.bias"])
        return cls(net, tokenizer, settings, batch_size)

    @classmethod
    def from_module(cls, module: Any, batch_size: int = 16) -> "SeaCatPredictor":
        hp = module.hparams
        settings = {"task": module.task, "labels": list(module.labels), "max_sentences": hp.max_sentences,
                    "max_tokens": hp.max_tokens, "pooling": hp.pooling, "position_embedding": hp.position_embedding,
                    "main_question_window": hp.main_question_window}
        return cls(module.net, module.tokenizer, settings, batch_size)

    def batches(self, records: Sequence[Transcript]) -> Iterable[dict[str, Any]]:
        for i in range(0, len(records), self.batch_size):
            feats = [featurize(t, self.settings["max_sentences"]) for t in records[i:i + self.batch_size]]
            yield collate_features(feats, self.tokenizer, self.settings["max_tokens"])

    @torch.inference_mode()
    def predict(self, records: Sequence[Transcript], progress: bool = False) -> list[dict[str, Any]]:
        from feedback_nlp.lightning_modules.seacat import NET_INPUTS, prediction_rows

        self.net.eval()
        device = next(self.net.parameters()).device
        batches: Iterable[dict[str, Any]] = self.batches(records)
        if progress:
            from rich.progress import track
            batches = track(batches, total=-(-len(records) // self.batch_size), description="SeaCat main questions")
        rows: list[dict[str, Any]] = []
        for batch in batches:
            logits, weights = self.net(**{k: batch[k].to(device) for k in NET_INPUTS})
            rows.extend(prediction_rows(batch, logits, weights, self.labels, self.settings["main_question_window"]))
        return rows


def load_predictor_from_checkpoint(path: str | Path, batch_size: int = 16) -> SeaCatPredictor:
    """A predictor from a Lightning checkpoint, read with weights_only=True (no code runs)."""
    from feedback_nlp.common.checkpoints import check_checkpoint
    from feedback_nlp.lightning_modules.seacat import SeaCat

    ckpt = check_checkpoint(path, SeaCat)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    module = SeaCat(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    module.load_state_dict(ckpt["state_dict"])
    return SeaCatPredictor.from_module(module.eval(), batch_size)


ONNX_FILE, ONNX_TOLERANCE = "seacat.onnx", 1e-4


def export_onnx(net: Any, tokenizer: Any, settings: dict[str, Any], path: Path,
                examples: Sequence[Transcript]) -> dict[str, Any]:
    """Export SeaCatNet (inputs = the collate function's tensors, every axis dynamic) to ONNX
    and check it against eager PyTorch with onnxruntime on `examples`.

    Returns {"onnx": file name, "onnx_max_abs_diff": ..., "onnx_tolerance": ...}; raises when
    the difference exceeds ONNX_TOLERANCE. Tokenization and sentence splitting stay in Python
    (featurize + collate_features); the graph starts at token ids.
    """
    net = net.eval()
    cache_size, net.cache_size = net.cache_size, 0      # the embedding cache is Python, not graph
    try:
        return _export_onnx(net, tokenizer, settings, path, examples)
    finally:
        net.cache_size = cache_size


def _export_onnx(net: Any, tokenizer: Any, settings: dict[str, Any], path: Path,
                 examples: Sequence[Transcript]) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    from feedback_nlp.lightning_modules.seacat import NET_INPUTS

    feats = [featurize(t, settings["max_sentences"]) for t in examples]
    batch = collate_features(feats, tokenizer, settings["max_tokens"])
    dims = {name: torch.export.Dim(name) for name in ("batch", "sentences", "unique", "tokens", "real")}
    dynamic = {"input_ids": {0: dims["unique"], 1: dims["tokens"]}, "attention_mask": {0: dims["unique"], 1: dims["tokens"]},
               "sentence_source": {0: dims["real"]}, "sentence_index": {0: dims["real"]},
               "sentence_mask": {0: dims["batch"], 1: dims["sentences"]},
               "positions": {0: dims["batch"], 1: dims["sentences"]}}
    torch.onnx.export(net, tuple(batch[k].cpu() for k in NET_INPUTS), str(path), input_names=list(NET_INPUTS),
                      output_names=["logits", "weights"], dynamic_shapes=dynamic, dynamo=True, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diff = 0.0
    for part in (feats[: max(1, len(feats) // 2)], feats):      # two batch shapes
        b = collate_features(part, tokenizer, settings["max_tokens"])
        got = session.run(None, {k: b[k].numpy() for k in NET_INPUTS})
        with torch.no_grad():
            want = [x.cpu().numpy() for x in net(**{k: b[k].to(next(net.parameters()).device) for k in NET_INPUTS})]
        diff = max(diff, *(float(np.abs(g - w).max()) for g, w in zip(got, want)))
    if diff > ONNX_TOLERANCE:
        raise RuntimeError(f"ONNX export differs from eager by {diff:.2e} > {ONNX_TOLERANCE:.0e}")
    return {"onnx": path.name, "onnx_max_abs_diff": diff, "onnx_tolerance": ONNX_TOLERANCE}

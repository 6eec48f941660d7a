"""Self-contained serving exports: weights, tokenizer, manifest and model card in one folder.

Why: serving must load a model without this repo's training state or pickles (litgpt's
"every checkpoint is a folder" lesson; lightning-transformers forgot the tokenizer). The folder
is written to a temp dir and renamed, so a crash never leaves a half export, and every
prediction can name the model version: a hash of the exported weights (001 §5).
"""
from __future__ import annotations

import hashlib
import importlib
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from feedback_nlp.common.io import atomic_directory, atomic_write_json, atomic_write_text

MANIFEST = "manifest.json"
WEIGHT_SUFFIXES = (".safetensors", ".onnx")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weight_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".safetensors",)}


def model_version(hashes: Mapping[str, str]) -> str:
    """A short stable id of the exported weights (all safetensors files, names included)."""
    h = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(hashes.items())).encode())
    return h.hexdigest()[:16]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent.parent)
        return out.stdout.strip() or None
    except Exception:
        return None


def _model_card(manifest: Mapping[str, Any]) -> str:
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted((manifest.get("metrics") or {}).items())
                        if isinstance(v, (int, float)))
    skip = ("config", "metrics", "weights_sha256")
    fields = "\n".join(f"- **{k}**: `{v}`" for k, v in manifest.items() if k not in skip)
    return (f"# {manifest['task']} model ({manifest['model_version']})\n\n"
            f"Exported for serving by the feedback-nlp training codebase. Load with\n"
            f"`python predict.py --export <this dir> --input in.jsonl --output out.jsonl`.\n\n"
            f"## Manifest\n{fields}\n\n## Metrics\n| metric | value |\n|---|---|\n{metrics}\n\n"
            f"The exact training configuration is in `manifest.json` (`config`). Weights are safetensors;\n"
            f"loading never unpickles Python objects.\n")


def export_module(module: Any, out_dir: str | Path, config: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, float] | None = None) -> Path:
    """Export a task LightningModule (it implements `export_for_serving(dir) -> dict`)."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        fields = dict(module.export_for_serving(tmp) or {})
        hashes = weight_hashes(tmp)
        manifest = {
            "task": getattr(module, "task", fields.get("task")),
            "predictor": f"{type(module).__module__}.load_predictor",
            "record_kind": getattr(module, "record_kind", None),
            **fields,
            "metrics": dict(metrics or {}),
            "config": dict(config or {}),
            "git_commit": git_commit(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "weights_sha256": hashes,
            "model_version": model_version(hashes),
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        atomic_write_text(tmp / "README.md", _model_card(manifest))
    return out_dir


def update_metrics(export_dir: str | Path, metrics: Mapping[str, float]) -> None:
    """Add final (test) metrics to an existing export's manifest and card, atomically."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    manifest["metrics"] = {**manifest.get("metrics", {}), **metrics}
    atomic_write_json(export_dir / MANIFEST, manifest)
    atomic_write_text(export_dir / "README.md", _model_card(manifest))


class ExportError(RuntimeError):
    pass


def read_manifest(export_dir: str | Path) -> dict[str, Any]:
    import json
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise ExportError(f"{export_dir} is not an export: no {MANIFEST}")
    return json.loads(path.read_text(encoding="utf-8"))


def verify_weights(export_dir: str | Path, manifest: Mapping[str, Any]) -> None:
    actual = weight_hashes(Path(export_dir))
    if actual != manifest.get("weights_sha256"):
        raise ExportError(f"{export_dir}: weights do not match the manifest's sha256 (modified or partial export)")


def load_predictor(export_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The task's predictor for an export, after checking its weights against the manifest."""
    manifest = read_manifest(export_dir)
    verify_weights(export_dir, manifest)
    module_name, _, fn = manifest["predictor"].rpartition(".")
    return getattr(importlib.import_module(module_name), fn)(Path(export_dir)), manifest

"""Self-contained serving exports: weights, tokenizer, manifest and model card in one folder.

Why: serving must load a model without this repo's training state or pickles (litgpt's
"every checkpoint is a folder" lesson; lightning-transformers forgot the tokenizer). The folder
is written to a temp dir and renamed, so a crash never leaves a half export, and every
prediction can name the model version: a hash of the exported weights (001 §5).
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.core.io import atomic_directory, atomic_write_json, atomic_write_text
from feedback_nlp.serving.manifest import (
    MANIFEST,
    REFERENCE_FILE,
    ExportError,
    content_hashes,
    model_version,
    read_manifest,
)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent.parent,
        )
        return out.stdout.strip() or None
    except Exception:
        return None


def _model_card(manifest: Mapping[str, Any]) -> str:
    metrics = "\n".join(
        f"| {k} | {v:.4f} |" for k, v in sorted((manifest.get("metrics") or {}).items()) if isinstance(v, (int, float))
    )
    skip = ("config", "metrics", "files_sha256")
    fields = "\n".join(f"- **{k}**: `{v}`" for k, v in manifest.items() if k not in skip)
    return (
        f"# {manifest['task']} model ({manifest['model_version']})\n\n"
        f"Exported for serving by the feedback-nlp training codebase. Load with\n"
        f"`feedback-nlp predict --export <this dir> --input in.jsonl --output out.jsonl`, or serve it with\n"
        f"`feedback-nlp serve --export <this dir>` (docs/serving.md).\n\n"
        f"## Manifest\n{fields}\n\n## Metrics\n| metric | value |\n|---|---|\n{metrics}\n\n"
        f"The exact training configuration is in `manifest.json` (`config`). Weights are safetensors;\n"
        f"loading never unpickles Python objects.\n"
    )


def export_module(
    module: Any,
    out_dir: str | Path,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    onnx: bool = False,
    onnx_examples: Sequence[Any] = (),
    reference: Mapping[str, Any] | None = None,
) -> Path:
    """Export a task LightningModule through its declared exporter (`export_for_serving`).

    With `onnx`, the task's ONNX graphs are written too, each checked against the torch model
    loaded back from the same folder (feedback_nlp/serving/onnx_export.py). The manifest names the task (the
    server picks the loader from its own registry), the record kind and the hash of every file.
    `reference`: the tested score sample (serving/reference_scores.py), written as its own file.
    """
    out_dir = Path(out_dir)
    contract = module.contract()
    with atomic_directory(out_dir) as tmp:
        fields = dict(module.export_for_serving(tmp) or {})
        fields["task"], fields["record_kind"] = contract.task, contract.record_kind
        if onnx:
            from feedback_nlp.serving.onnx_export import export_for_task

            fields.update(export_for_task(tmp, fields, examples=onnx_examples))
        if reference is not None:
            atomic_write_json(tmp / REFERENCE_FILE, reference)
        hashes = content_hashes(tmp)
        manifest = {
            **fields,
            "metrics": dict(metrics or {}),
            "config": dict(config or {}),
            "git_commit": git_commit(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files_sha256": hashes,
            "model_version": model_version(hashes),
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        atomic_write_text(tmp / "README.md", _model_card(manifest))
    return out_dir


def add_reference_scores(export_dir: str | Path, reference: Mapping[str, Any]) -> None:
    """Put the tested score sample into a finished export, in one rename: the new folder is built
    from hard links to the old one's files plus the sample and a re-hashed manifest (the model
    version stays: the sample is not part of it)."""
    import os
    import shutil

    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    with atomic_directory(export_dir) as tmp:
        shutil.copytree(export_dir, tmp, copy_function=_link_or_copy, dirs_exist_ok=True)
        atomic_write_json(tmp / REFERENCE_FILE, reference)
        hashes = content_hashes(tmp)
        if model_version(hashes) != manifest["model_version"]:
            raise ExportError(f"{export_dir}: its files no longer give model_version {manifest['model_version']}")
        manifest["files_sha256"] = hashes
        os.unlink(tmp / MANIFEST)  # a link to the old manifest: replace, never write through it
        atomic_write_json(tmp / MANIFEST, manifest)


def _link_or_copy(src: str, dst: str) -> None:
    import os
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def update_metrics(export_dir: str | Path, metrics: Mapping[str, float]) -> None:
    """Add final (test) metrics to an existing export's manifest and card, atomically."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    manifest["metrics"] = {**manifest.get("metrics", {}), **metrics}
    atomic_write_json(export_dir / MANIFEST, manifest)
    atomic_write_text(export_dir / "README.md", _model_card(manifest))

"""From an export's task name to the code that loads it: a fixed table, never the manifest's word.

Why: manifests written before this table named a `predictor` import string that loading
imported and called, so a crafted export could run any importable callable. Now the task name
selects one of the loaders below (imported lazily, so serving one task does not import the
others' dependencies), and anything else is refused with the known names listed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from feedback_nlp.core.records import RECORD_KINDS
from feedback_nlp.core.vocabulary import TASK_RECORD_KINDS
from feedback_nlp.serving.manifest import ExportError, read_manifest, verify_export
from feedback_nlp.serving.runtime import RuntimeOptions

# task -> (module, loader function); the record kind a task reads is core/vocabulary's
LOADERS: dict[str, tuple[str, str]] = {
    "product_safety": ("feedback_nlp.serving.product_safety", "load"),
    "multilevel_issues": ("feedback_nlp.serving.multilevel_issues", "load"),
    "mcml_bert": ("feedback_nlp.serving.mcml_bert", "load"),
    "seacat": ("feedback_nlp.serving.seacat", "load"),
    "universal_model": ("feedback_nlp.universal_model.repository_predictor", "load_predictor"),  # verifies itself
}
REGISTRY: dict[str, tuple[str, str, str]] = {task: (*LOADERS[task], TASK_RECORD_KINDS[task]) for task in LOADERS}
SELF_VERIFYING = {"universal_model"}


def known_tasks() -> list[str]:
    return sorted(REGISTRY)


def task_entry(manifest: dict[str, Any], export_dir: str | Path) -> tuple[str, str, str]:
    task = manifest.get("task")
    if task not in REGISTRY:
        raise ExportError(
            f"{export_dir}: manifest names task {task!r}, which this server does not know "
            f"(known: {', '.join(known_tasks())})"
        )
    kind = manifest.get("record_kind")
    if kind is not None and kind != REGISTRY[task][2]:
        raise ExportError(
            f"{export_dir}: manifest says record_kind {kind!r}, but task {task!r} reads {REGISTRY[task][2]!r} records"
        )
    return REGISTRY[task]


def _loader(task: str, export_dir: Path) -> Callable[..., Any]:
    """The registered loader of `task`, imported now; a missing one is an ExportError naming it."""
    module_name, fn_name, _ = REGISTRY[task]
    try:
        loader: Callable[..., Any] = getattr(importlib.import_module(module_name), fn_name)
        return loader
    except (ImportError, AttributeError) as e:
        raise ExportError(
            f"{export_dir}: task {task} needs {module_name}.{fn_name}, which this installation lacks ({e})"
        ) from None


def load_export(export_dir: str | Path, options: RuntimeOptions = RuntimeOptions()) -> tuple[Any, dict[str, Any]]:
    """(predictor, manifest) for an export folder, after its weights are checked against the manifest."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    module_name, fn_name, kind = task_entry(manifest, export_dir)
    manifest.setdefault("record_kind", kind)
    assert manifest["record_kind"] in RECORD_KINDS
    if manifest["task"] in SELF_VERIFYING:
        if options.backend != "torch":
            raise ExportError(f"task {manifest['task']} has no --backend {options.backend}")
        return _loader(manifest["task"], export_dir)(export_dir), manifest
    verify_export(export_dir, manifest)
    loader = getattr(importlib.import_module(module_name), fn_name)
    return loader(export_dir, manifest, options), manifest


def preflight(export_dir: str | Path, options: RuntimeOptions) -> dict[str, Any]:
    """Every check a server can make before loading a model: manifest, task, hashes, backend files."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    _, _, kind = task_entry(manifest, export_dir)
    manifest.setdefault("record_kind", kind)
    if manifest["task"] not in SELF_VERIFYING:
        verify_export(export_dir, manifest)
    else:
        _loader(manifest["task"], export_dir)
    if options.backend == "onnx":
        if manifest["task"] in ("multilevel_issues", "universal_model"):
            raise ExportError(f"task {manifest['task']} serves with --backend torch only")
        files = ((manifest.get("onnx") or {}).get("files") or {}) if isinstance(manifest.get("onnx"), dict) else {}
        if not files:
            raise ExportError(
                f"{export_dir}: no ONNX graph in this export; write one with `export --onnx` "
                "or serve with --backend torch"
            )
    return manifest

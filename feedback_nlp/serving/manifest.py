"""An export's manifest and the hashes that tie it to its weight files.

Why: 001 §5 asks that every prediction name the model version it came from, and a server must
not run weights that differ from the ones that were evaluated. Every weight file (.safetensors
and .onnx) is hashed into the manifest when the export is written and checked before loading;
the model version is a hash of the safetensors files only, so adding an ONNX graph of the same
weights does not change it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from feedback_nlp.core.io import sha256_file

MANIFEST = "manifest.json"
WEIGHT_SUFFIXES = (".safetensors", ".onnx")
VERSION_SUFFIXES = (".safetensors",)


class ExportError(RuntimeError):
    """An export folder that cannot be served as it is (missing, tampered, unknown task...)."""


def weight_hashes(folder: Path, suffixes: tuple[str, ...] = WEIGHT_SUFFIXES) -> dict[str, str]:
    """{relative path: sha256} of every weight file under `folder` (ONNX external data included)."""
    folder = Path(folder)
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (p.suffix in suffixes or p.name.endswith(".onnx.data"))
    }


def model_version(hashes: Mapping[str, str]) -> str:
    """A short stable id of the exported weights (the safetensors files, names included)."""
    kept = {k: v for k, v in hashes.items() if k.endswith(VERSION_SUFFIXES)}
    h = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(kept.items())).encode())
    return h.hexdigest()[:16]


def read_manifest(export_dir: str | Path) -> dict[str, Any]:
    path = Path(export_dir) / MANIFEST
    if not Path(export_dir).is_dir():
        raise ExportError(f"{export_dir}: no such export folder")
    if not path.is_file():
        raise ExportError(f"{export_dir} is not an export: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ExportError(f"{path}: expected a JSON object")
    for key in ("task", "model_version"):  # weight hashes: verify_weights (a repository hashes its own files)
        if key not in manifest:
            raise ExportError(f"{path}: missing field '{key}'")
    return manifest


def verify_weights(export_dir: str | Path, manifest: Mapping[str, Any]) -> None:
    """Refuse an export whose weight files differ from the manifest's hashes (named per file)."""
    want = dict(manifest.get("weights_sha256") or {})
    if not want:
        raise ExportError(f"{export_dir}: the manifest lists no weight hashes")
    got = weight_hashes(Path(export_dir))
    problems = [f"{name}: missing" for name in sorted(set(want) - set(got))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(got) - set(want))]
    problems += [
        f"{name}: sha256 differs from the manifest" for name in sorted(set(want) & set(got)) if want[name] != got[name]
    ]
    if problems:
        raise ExportError(
            f"{export_dir}: weights do not match the manifest (modified or partial export): " + "; ".join(problems)
        )

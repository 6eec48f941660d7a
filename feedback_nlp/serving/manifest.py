"""An export's manifest and the hashes that tie it to every file a prediction depends on.

Why: 001 §5 asks that every prediction name the model version it came from, and a server must
not run an export that differs from the one that was evaluated. Not only weights decide a
prediction: the threshold and label map (classifier.json), the tokenizer, the generation and
vote settings are files of the export too. So every file but the manifest itself and the model
card is hashed into the manifest (`files_sha256`) when the export is written and checked before
loading, and the model version is a hash of those files (ONNX graphs excluded: adding a graph of
the same model does not change what it predicts). Editing any of them is refused by name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from feedback_nlp.core.errors import UserError
from feedback_nlp.core.io import sha256_file

MANIFEST = "manifest.json"
MODEL_CARD = "README.md"
UNHASHED = (MANIFEST, MODEL_CARD)  # written after the hashes; they describe the export
GRAPH_SUFFIXES = (".onnx", ".onnx.data")  # another runtime's copy of the same model
REFERENCE_FILE = "reference_scores.json"  # the tested score sample (serving/reference_scores.py)


class ExportError(UserError, RuntimeError):
    """An export folder that cannot be served as it is (missing, tampered, unknown task...)."""


def content_hashes(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file of an export folder but the manifest and model card."""
    folder = Path(folder)
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in UNHASHED
    }


def model_version(hashes: Mapping[str, str]) -> str:
    """A short stable id of what an export predicts: its files (names included), ONNX graphs and
    the reference score sample aside (neither changes a prediction)."""
    kept = {k: v for k, v in hashes.items() if not k.endswith(GRAPH_SUFFIXES) and k != REFERENCE_FILE}
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


def verify_export(export_dir: str | Path, manifest: Mapping[str, Any]) -> None:
    """Refuse an export whose files differ from the manifest's hashes (each file named), or whose
    model_version is not the one its files give."""
    want = manifest.get("files_sha256")
    if not want:
        hint = (
            " (it was written by an older version that hashed only its weights; re-export it)"
            if manifest.get("weights_sha256")
            else ""
        )
        raise ExportError(f"{export_dir}: the manifest lists no file hashes{hint}")
    got = content_hashes(Path(export_dir))
    problems = [f"{name}: missing" for name in sorted(set(want) - set(got))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(got) - set(want))]
    problems += [
        f"{name}: sha256 differs from the manifest" for name in sorted(set(want) & set(got)) if want[name] != got[name]
    ]
    if problems:
        raise ExportError(
            f"{export_dir}: files do not match the manifest (modified or partial export): " + "; ".join(problems)
        )
    if manifest.get("model_version") != model_version(got):
        raise ExportError(
            f"{export_dir}: model_version {manifest.get('model_version')!r} is not the version of its files "
            f"({model_version(got)}); the manifest was edited"
        )

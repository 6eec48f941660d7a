"""W&B lineage: the data files a run read and the export it wrote, as artifacts (001 §5).

Why: a prediction carries the `model_version` of its export; logging that export as a model
artifact aliased with the version (and `best`, it is built from the best checkpoint) leads from
any prediction to the run, its config and metrics, and from there to the exact train/dev/test
files, logged as dataset artifacts. W&B stores an artifact version once per content digest, so
an unchanged file logged by a later run is not uploaded again; its sha256 rides along (metadata
and alias) so it can be matched with files outside W&B.

Offline runs cannot `use_artifact` (wandb raises), so there the data files are logged as
artifacts of the run and listed in its config (`lineage/inputs`); online they are used, which
draws the input edge in the W&B lineage graph.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from feedback_nlp.core.io import sha256_file
from feedback_nlp.serving.manifest import MANIFEST

DATA_KEYS = ("path", "train_path", "dev_path", "test_path", "pc_path")


def artifact_name(text: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "artifact"


def data_files(data_cfg: Mapping[str, Any] | None) -> dict[str, Path]:
    """role -> existing file, from the data section's *path keys (one role per distinct file)."""
    out: dict[str, Path] = {}
    seen: set[Path] = set()
    for key in DATA_KEYS:
        value = (data_cfg or {}).get(key)
        if not value or not Path(str(value)).is_file():
            continue
        path = Path(str(value)).resolve()
        if path not in seen:
            seen.add(path)
            out[key.removesuffix("_path") if key != "path" else "data"] = path
    return out


def log_datasets(run: Any, data_cfg: Mapping[str, Any] | None) -> list[str]:
    """Log each data file as a `dataset` artifact named after the file; returns `name:sha256-...` refs."""
    import wandb

    refs: list[str] = []
    for role, path in data_files(data_cfg).items():
        digest = sha256_file(path)
        alias = f"sha256-{digest[:16]}"
        art = wandb.Artifact(
            artifact_name(path.name),
            type="dataset",
            metadata={"sha256": digest, "bytes": path.stat().st_size, "role": role, "source_path": str(path)},
        )
        art.add_file(str(path), name=path.name)
        if run.offline:
            run.log_artifact(art, aliases=[alias])
        else:
            run.use_artifact(art, aliases=[alias])
        refs.append(f"{art.name}:{alias}")
    if refs:
        run.config.update({"lineage/inputs": refs}, allow_val_change=True)
    return refs


def log_export(run: Any, export_dir: Path) -> str | None:
    """Log a serving export folder as a `model` artifact aliased with its model_version and `best`."""
    import wandb

    manifest_path = Path(export_dir) / MANIFEST
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    version = str(manifest["model_version"])
    keep = ("task", "model_version", "metrics", "git_commit", "created_at", "files_sha256", "threshold")
    art = wandb.Artifact(
        artifact_name(f"{manifest.get('task', 'model')}-{run.id}"),
        type="model",
        metadata={k: manifest[k] for k in keep if k in manifest},
    )
    art.add_dir(str(export_dir))
    run.log_artifact(art, aliases=[version, "best"])
    run.summary["model_version"] = version
    return version

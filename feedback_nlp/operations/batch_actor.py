"""One scoring actor: an export loaded once, then batch after batch of records -> predict's rows.

Why its own module: this is what runs on the cluster's workers, so it imports only what a worker
needs (the serving registry, the record decoder, the row writer) and holds no job state. An
export in object storage is copied once per node and model version (a cache the node's actors
and later runs share) and checked against its manifest's hashes on load, like any export.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from typing import Any

from feedback_nlp.core.errors import Problem, UserError
from feedback_nlp.operations import batch_inputs, batch_outputs


class ExportChanged(RuntimeError):
    """The export's model_version differs from the one checked at the start (a repository updated mid-run)."""


def local_export(export: str) -> str:
    """A local folder holding the export: itself, or this node's cached copy of an object-store
    export (one copy per node and model version, shared by its actors and later runs; its file
    hashes are checked on load, as for any export)."""
    if not batch_inputs.is_uri(export):
        return export
    import hashlib
    import tempfile

    from pyarrow import fs as pafs

    fs, path = batch_inputs.filesystem(export)
    try:
        with fs.open_input_stream(f"{path}/manifest.json") as f:
            version = json.loads(f.read()).get("model_version", "unversioned")
    except (OSError, ValueError):
        raise UserError(f"--export {export}: no manifest.json there (not an export folder)") from None
    root = os.environ.get("FEEDBACK_NLP_EXPORT_CACHE") or os.path.join(tempfile.gettempdir(), "feedback-nlp-exports")
    key = hashlib.sha256(f"{export}\n{version}".encode()).hexdigest()[:16]
    target = os.path.join(root, key)
    if os.path.isfile(os.path.join(target, "manifest.json")):
        return target
    os.makedirs(root, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=f".{key}.", dir=root)
    pafs.copy_files(path, partial, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    try:
        os.rename(partial, target)  # atomic: another actor of this node may have won the race
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return target


class Scorer:
    """One actor: loads the export once, then scores the batches Ray Data hands it."""

    def __init__(self, export: str, kind: str, options: Any, threads: int, fmt: str, model_version: str):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        from feedback_nlp.serving.registry import load_export

        torch.set_num_threads(threads)
        self.kind, self.fmt, self.batch_size = kind, fmt, options.batch_size
        self.predictor, manifest = load_export(local_export(export), options)
        self.model_version = manifest["model_version"]
        if self.model_version != model_version:
            raise ExportChanged(f"the export is now model {self.model_version}, the run started with {model_version}")

    def __call__(self, batch: Any) -> Any:
        from feedback_nlp.core.records import decode_row
        from feedback_nlp.serving.protocol import stamp_rows

        records = []
        for i, text in enumerate(batch.column("payload").to_pylist()):
            record = decode_row(json.loads(text), "<payload>", i + 1, self.kind)  # decoded once already
            if isinstance(record, Problem):
                raise RuntimeError(f"a checked record no longer decodes: {record}")
            records.append(record)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(records), self.batch_size):  # predict's chunks (cli/predict.py score_stream)
            chunk = records[start : start + self.batch_size]
            keyed = [replace(r, id=f"{i}:{r.id}") for i, r in enumerate(chunk)]
            predicted = self.predictor.predict(keyed)
            changed = {row["model_version"] for row in predicted if "model_version" in row} - {self.model_version}
            if changed:  # a repository updated (repo add/delete) while the job ran: one model per output
                raise ExportChanged(
                    f"the export is now model {changed.pop()}, the run started with {self.model_version}"
                )
            stamped = stamp_rows(keyed, predicted, self.model_version)
            rows += [{**row, "id": rec.id} for rec, row in zip(chunk, stamped)]
        return batch_outputs.rows_to_table(rows, self.fmt)

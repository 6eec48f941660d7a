"""What `serve` and predict.py call to answer with an exported question repository.

Why its own module: serving must import no Lightning and look nothing up in a training
config -- the repository folder is the whole model (manifest: retrieval and vote settings,
label schema, embedder). Readers never lock: each `predict` checks whether the manifest
was replaced by an update (add / delete) and, if so, switches to the new generation before
answering, so answers never mix two generations and an update is seen once committed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feedback_nlp.universal_model.predict import UniversalModel
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.repository_store import MANIFEST


def _text(record: Any) -> str:
    for name in ("text", "question"):
        value = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
        if isinstance(value, str):
            return value
    raise ValueError(f"record {getattr(record, 'id', record)!r} has no text/question string")


class RepositoryPredictor:
    def __init__(self, export_dir: str | Path, verify: bool = True):
        self.root, self.verify = Path(export_dir), verify
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._model: UniversalModel | None = None
        self._repo: Repository | None = None  # the model's repository, with its Repository type
        self._refresh()

    def _refresh(self) -> tuple[UniversalModel, Repository]:
        st = os.stat(self.root / MANIFEST)
        stamp = (st.st_mtime_ns, st.st_ino)
        with self._lock:
            if stamp != self._stamp or self._model is None or self._repo is None:
                embedder = self._repo._embedder if self._repo is not None else None
                repo = Repository.open(self.root, verify=self.verify, embedder=embedder)
                labels = repo.manifest["labels"]
                self._model = UniversalModel.from_settings(
                    repo, labels["categorical"], labels["numeric"], repo.settings.k, repo.manifest["prediction"]
                )
                self._repo, self._stamp = repo, stamp
            return self._model, self._repo

    @property
    def manifest(self) -> dict[str, Any]:
        return self._refresh()[1].manifest

    @property
    def model_version(self) -> str:
        return self.manifest["model_version"]

    def predict(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """One row per record: its id, per label the prediction (with the categorical
        distribution), the neighbours' ids and scores, and the repository's model_version."""
        model, repo = self._refresh()
        rows = model.predict([_text(r) for r in records])
        version = repo.manifest["model_version"]
        out = []
        for record, row in zip(records, rows):
            rid = record.get("id") if isinstance(record, dict) else getattr(record, "id", None)
            item: dict[str, Any] = {"id": rid, "model_version": version}
            for name in model.categorical:
                item[name] = {
                    "prediction": row[name]["prediction"],
                    "distribution": {str(k): v for k, v in row[name]["distribution"].items()},
                }
            for name in model.numeric:
                item[name] = {"prediction": row[name]["prediction"]}
            item["neighbors"] = [{"id": i, "score": s} for i, s in zip(row["neighbors"], row["scores"])]
            out.append(item)
        return out


def load_predictor(export_dir: Path) -> RepositoryPredictor:
    return RepositoryPredictor(export_dir)

"""Swap a served export without downtime: a re-pointed `current` link, or `POST /admin/reload`.

Why in the inference worker: LitServe has no reload of its own, and a worker restart would drop
the requests it holds. Each worker holds its export as one `Active` (predictor, model_version,
the real folder it came from); a batch takes that reference once when it starts. A background
thread here loads the new export NEXT to the old one -- manifest and every file hash checked,
same task required, a warm-up prediction run -- and only then replaces the reference. Batches
already running finish on the old predictor; the next batch gets the new one; no request waits
for the load or fails because of it. A new export that fails any check is refused and the old
one keeps serving (logged, and reported to the /admin/reload caller).

How the API-server processes talk to the workers: through files in the server's control folder
(the temp folder that already holds the workers' ready markers), so no extra process or port:
`reload-request.json` ({"seq", "names"}: written by /admin/reload, seq = time in ns) and one
`state-<name>@<pid>.json` per worker (the version it serves, the last request seq it handled,
the last error). A worker polls both every `poll` seconds: a stat and a small read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
REQUEST_FILE = "reload-request.json"


@dataclass(frozen=True)
class Active:
    """What a worker serves: swapped as one reference, so a batch never mixes two exports."""

    predictor: Any
    model_version: str
    path: str  # the real folder (symlinks resolved) it was loaded from
    task: str | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def request_reload(control_dir: str | Path, names: Sequence[str] | None = None) -> int:
    """Ask every worker (of `names`, default all) to check its export now; returns the request's seq."""
    from feedback_nlp.core.io import atomic_write_json

    seq = time.time_ns()
    atomic_write_json(Path(control_dir, REQUEST_FILE), {"seq": seq, "names": None if names is None else list(names)})
    return seq


def states(control_dir: str | Path, name: str | None = None) -> list[dict[str, Any]]:
    """Every worker's last state (of export `name`, default all), from its state file."""
    pattern = f"state-{name}@*.json" if name else "state-*.json"
    found = [_read_json(p) for p in sorted(Path(control_dir).glob(pattern))]
    return [s for s in found if isinstance(s, dict)]


def wait_for(
    control_dir: str | Path, seq: int, workers: Mapping[str, int], timeout: float
) -> tuple[bool, list[dict[str, Any]]]:
    """(every worker of `workers` (name -> count) handled request `seq`, their states), polling."""
    deadline = time.monotonic() + timeout
    while True:
        done = [s for name in workers for s in states(control_dir, name) if int(s.get("seq") or 0) >= seq]
        complete = all(sum(s["name"] == n for s in done) >= k for n, k in workers.items())
        if complete or time.monotonic() >= deadline:
            return complete, done
        time.sleep(0.05)


class Reloader:
    """A worker's watcher: swaps its export when the path's real folder changes or a reload is asked.

    `load(real_folder)` returns a new Active (checked and warmed up) or raises; `swap(active)`
    installs it; `current()` is what the worker serves now."""

    def __init__(
        self,
        name: str,
        export_path: str | Path,
        control_dir: str | Path,
        load: Callable[[str], Active],
        swap: Callable[[Active], None],
        current: Callable[[], Active | None],
        poll: float = 1.0,
    ):
        self.name, self.export_path, self.control = name, str(export_path), Path(control_dir)
        self.load, self.swap, self.current, self.poll = load, swap, current, poll
        self.handled = 0  # the last reload request seq handled
        self._failed: tuple[str, int] | None = None  # (folder, manifest mtime) that failed: not retried by polling
        self._stop = threading.Event()
        self.started = time.time_ns()

    def start(self) -> None:
        # requests older than this worker (it loaded the newest export anyway) are not re-done
        self.handled = max(self.handled, self.started)
        threading.Thread(target=self._run, name=f"reload-{self.name}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # never let the watcher die: the next round tries again
                LOG.exception("reload check of %s failed", self.name)

    def check(self) -> str | None:
        """One round: reload when asked or when the path points elsewhere; returns the status
        (reloaded / unchanged / failed) when something was tried, else None."""
        req = _read_json(self.control / REQUEST_FILE) or {}
        seq = int(req.get("seq") or 0)
        asked = seq > self.handled and (req.get("names") is None or self.name in req["names"])
        folder = os.path.realpath(self.export_path)
        cur = self.current()
        moved = cur is None or folder != cur.path
        stamp = _mtime(Path(folder, "manifest.json"))
        if not asked and (not moved or stamp is None or self._failed == (folder, stamp)):
            return None  # nothing new (or a link being re-pointed right now: the next round sees it)
        status, error = "unchanged", None
        try:
            from feedback_nlp.serving.manifest import read_manifest

            version = read_manifest(folder)["model_version"]
            if moved or cur is None or version != cur.model_version:
                new = self.load(folder)
                self.swap(new)
                status = "reloaded"
                LOG.warning(
                    "%s: now serving %s from %s (was %s)",
                    self.name,
                    new.model_version,
                    folder,
                    None if cur is None else cur.model_version,
                )
            self._failed = None
        except Exception as e:
            status, error = "failed", f"{type(e).__name__}: {e}"
            self._failed = (folder, stamp or 0)
            LOG.error("%s: reload from %s refused, still serving the previous export: %s", self.name, folder, error)
        if asked:
            self.handled = seq
        self.write_state(status, error, previous=None if cur is None else cur.model_version)
        with contextlib.suppress(Exception):  # metrics are a report, never a reason to fail a reload
            from feedback_nlp.serving.metrics import metrics

            metrics().reloads.labels(self.name, status).inc()
        return status

    def write_state(self, status: str, error: str | None = None, previous: str | None = None) -> None:
        from feedback_nlp.core.io import atomic_write_json

        cur = self.current()
        state = {
            "name": self.name,
            "pid": os.getpid(),
            "seq": self.handled,
            "status": status,
            "error": error,
            "model_version": None if cur is None else cur.model_version,
            "previous": previous,
            "path": None if cur is None else cur.path,
            "at": time.time(),
        }
        with contextlib.suppress(OSError):  # the control folder is gone: the server is stopping
            atomic_write_json(self.control / f"state-{self.name}@{os.getpid()}.json", state)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None

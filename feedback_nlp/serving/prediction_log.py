"""The prediction log (001 §5): every scored record, kept as partitioned Parquet, never losing an answered row.

Why: "time-stamping every prediction and version controlling all the deployed models ... we can
always link a prediction back to a model version". A response row names its model_version, but
only a kept row lets `feedback-nlp monitor` compute KPIs per window and language after the
inspection team's decisions arrive.

How, and what it promises:
- On the request path a row costs one `write()` of a JSON line to this process's own
  write-ahead segment (`_wal/seg-<host>-<pid>-<start>.jsonl`, O_APPEND); the response is sent
  after that call returns. The bytes are then in the OS page cache: a killed process (kill -9,
  OOM) loses nothing it answered. An OS crash or power loss can lose the rows of the last few
  seconds that the kernel had not written back (~30 s on Linux defaults) unless `fsync` is on
  (one fsync per scored batch).
- A background thread rotates the segment every `rotate_seconds` (or at `rotate_bytes`) and turns
  each closed segment into Parquet part files, one per (date, model_version) partition
  (`date=YYYY-MM-DD/model_version=V/part-<host>-<pid>-<start>.parquet`), each written to a temp
  file and renamed, and then deletes the segment. Part names derive from the segment name, so a
  conversion cut short and redone rewrites the same files: a row is in the log exactly once.
- Nothing shared is locked: each process (LitServe runs the model in several worker processes)
  has its own segments and part files. Segments of dead processes (a killed server) are turned
  into parts by the next server start and by every `feedback-nlp monitor` read (`compact`).
- A segment's torn last line (killed in the middle of a write) was never answered: it is dropped.

The text itself is logged only with `log_text`; every row carries the sha256 of its input text
(the columns: serving/prediction_rows.py).
The root can be an object-store URI (`s3://bucket/prefix`, through pyarrow.fs): parts are then
PUT whole (atomic per object) and the segments live in a local spool folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from feedback_nlp.core.errors import UserError
from feedback_nlp.serving.prediction_rows import FILE_SCHEMA, PARTITIONS, SCHEMA, entry

__all__ = ["FILE_SCHEMA", "PARTITIONS", "SCHEMA", "PredictionLog", "compact", "dataset", "entry", "read_log"]

LOG = logging.getLogger(__name__)
WAL_DIR = "_wal"  # pyarrow.dataset ignores names starting with "_" or "."


class PredictionLogError(UserError, ValueError):
    """A log location that cannot be written (checked before any model loads)."""


HOST = socket.gethostname().replace("-", "_") or "host"


# --- where the log lives ----------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """The log's filesystem and base path, and the local folder of its write-ahead segments."""

    fs: Any
    base: str
    spool: Path
    local: bool


def locate(root: str | os.PathLike[str]) -> Location:
    text = str(root)
    if "://" in text and not text.startswith("file://"):
        fs, base = pafs.FileSystem.from_uri(text)
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        spool = cache / "feedback-nlp" / "prediction-log" / hashlib.sha256(text.encode()).hexdigest()[:16]
        return Location(fs, base.rstrip("/"), spool, False)
    path = Path(text.removeprefix("file://")).resolve()
    return Location(pafs.LocalFileSystem(), str(path), path / WAL_DIR, True)


def check_root(root: str | os.PathLike[str]) -> str:
    """The log root, ready to write (local folders are created), or PredictionLogError."""
    try:
        loc = locate(root)
    except (pa.ArrowException, ValueError, OSError) as e:
        raise PredictionLogError(f"prediction log {root}: {e}") from None
    try:
        loc.spool.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PredictionLogError(f"prediction log {root}: cannot create {loc.spool} ({e.strerror})") from None
    if not os.access(loc.spool, os.W_OK):
        raise PredictionLogError(f"prediction log {root}: {loc.spool} is not writable")
    return str(root) if not loc.local else loc.base


def partition_dir(loc: Location, date: str, version: str) -> str:
    quote = lambda v: urllib.parse.quote(v, safe="")  # noqa: E731  (hive partitioning decodes URI escapes)
    return f"{loc.base}/date={quote(date)}/model_version={quote(version)}"


# --- segments -> parts --------------------------------------------------------------------------


def _segment_owner(path: Path) -> tuple[str, int, str]:
    """(host, pid, start) from seg-<host>-<pid>-<start>.jsonl."""
    host, pid, start = path.stem.removeprefix("seg-").rsplit("-", 2)
    return host, int(pid), start


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rows(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines[-1]:
        LOG.warning("%s: dropping a torn last line (%d bytes; the process died while writing it)", path, len(lines[-1]))
    rows = []
    for i, line in enumerate(lines[:-1], start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            LOG.warning("%s:%d: not a JSON line; skipped", path, i)
    return rows


def _write_part(loc: Location, folder: str, name: str, table: pa.Table, fsync: bool) -> None:
    if not loc.local:  # an object PUT is atomic on its own
        loc.fs.create_dir(folder, recursive=True)
        with loc.fs.open_output_stream(f"{folder}/{name}") as out:
            pq.write_table(table, out)
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = Path(folder, f".{name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pq.write_table(table, f)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, Path(folder, name))
    if fsync:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def convert_segment(loc: Location, segment: Path, fsync: bool = False) -> int:
    """Write a closed segment's rows as Parquet parts (one per partition), then delete it.
    Idempotent: a rerun after a crash rewrites the same part files. Returns the rows converted."""
    try:
        rows = _rows(segment)
    except FileNotFoundError:  # another compactor finished it
        return 0
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        at = datetime.fromisoformat(row["predicted_at"])
        row["predicted_at"] = at
        groups.setdefault((at.date().isoformat(), row.pop("model_version")), []).append(row)
    name = f"part-{segment.stem.removeprefix('seg-')}.parquet"
    for (date, version), part in sorted(groups.items()):
        table = pa.Table.from_pylist(part, schema=FILE_SCHEMA)
        _write_part(loc, partition_dir(loc, date, version), name, table, fsync)
    with contextlib.suppress(FileNotFoundError):
        segment.unlink()
    return len(rows)


def compact(root: str | os.PathLike[str], fsync: bool = False, mine_since: int | None = None) -> int:
    """Convert every segment no live process is writing (a dead process's, or a leftover of a
    dead one whose pid this process reuses: older than `mine_since`, this writer's start in ns);
    returns the rows converted. Segments of other hosts are left to a compaction on their host."""
    loc = locate(root)
    if not loc.spool.is_dir():
        return 0
    me, n = os.getpid(), 0
    for segment in sorted(loc.spool.glob("seg-*.jsonl")):
        try:
            host, pid, start = _segment_owner(segment)
        except ValueError:
            continue
        if host != HOST:
            continue
        if pid == me and (mine_since is None or int(start) >= mine_since):
            continue  # this process's own
        if pid != me and _alive(pid):
            continue
        n += convert_segment(loc, segment, fsync)
    return n


# --- the writer -------------------------------------------------------------------------------


class PredictionLog:
    """One process's writer. `append` on the request path; `close` flushes everything to Parquet."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        task: str,
        log_text: bool = False,
        fsync: bool = False,
        rotate_seconds: float = 5.0,
        rotate_bytes: int = 8 << 20,
    ):
        self.root, self.task, self.log_text, self.fsync = str(root), task, log_text, fsync
        self.rotate_seconds, self.rotate_bytes = rotate_seconds, rotate_bytes
        self.loc = locate(root)
        self.loc.spool.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # this process's threads only: never held across processes
        self._fd: int | None = None
        self._segment: Path | None = None
        self._bytes = 0
        self._closed: list[Path] = []
        self._wake, self._stop = threading.Event(), threading.Event()
        self._born = time.time_ns()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, records: Sequence[Any], rows: Sequence[Mapping[str, Any]]) -> None:
        """Log one scored batch; returns once the rows are in this process's segment (one write)."""
        if not records:
            return
        data = "".join(
            json.dumps(entry(self.task, rec, row, self.log_text), ensure_ascii=False, separators=(",", ":")) + "\n"
            for rec, row in zip(records, rows)
        ).encode("utf-8")
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            if self.fsync:
                os.fsync(self._fd)
            self._bytes += len(data)
            full = self._bytes >= self.rotate_bytes
        if full:
            self._wake.set()

    def _open(self) -> None:
        start = f"{time.time_ns():020d}"
        self._segment = self.loc.spool / f"seg-{HOST}-{os.getpid()}-{start}.jsonl"
        self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._bytes = 0

    def _rotate(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            os.close(self._fd)
            assert self._segment is not None
            self._closed.append(self._segment)
            self._fd, self._segment = None, None

    def _convert_closed(self) -> None:
        while self._closed:
            segment = self._closed[0]
            convert_segment(self.loc, segment, self.fsync)
            self._closed.pop(0)

    def _run(self) -> None:
        try:
            compact(self.root, self.fsync, self._born)  # leftovers of a killed predecessor
        except Exception:
            LOG.exception("compacting leftover prediction-log segments under %s failed", self.root)
        while not self._stop.is_set():
            self._wake.wait(self.rotate_seconds)
            self._wake.clear()
            try:
                self._rotate()
                self._convert_closed()
            except Exception:  # the segment stays; the next round or the next start converts it
                LOG.exception("writing prediction-log parts under %s failed", self.root)

    def close(self) -> None:
        """Stop the thread, then write everything appended so far as Parquet (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._rotate()
        self._convert_closed()


# --- reading ----------------------------------------------------------------------------------


def dataset(root: str | os.PathLike[str]) -> ds.Dataset:
    """The log as a pyarrow dataset (date and model_version from the hive partition folders)."""
    loc = locate(root)
    return ds.dataset(
        loc.base,
        filesystem=loc.fs,
        format="parquet",
        schema=SCHEMA,
        partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
    )


def read_log(
    root: str | os.PathLike[str], columns: Sequence[str] | None = None, compact_first: bool = True
) -> pa.Table:
    """Every logged row (after converting dead processes' segments when `compact_first`)."""
    if compact_first:
        compact(root)
    return dataset(root).to_table(columns=list(columns) if columns else None)

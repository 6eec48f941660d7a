"""Read back what an offline W&B run recorded, from its `run-<id>.wandb` transaction log.

Why: tests must check what W&B will receive when the run syncs (artifact names and aliases,
summary values, plot keys), not only that a logging call was made. wandb 0.31 ships no
Python reader for this file, so this is the log format itself: a 7-byte header
(":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of records, each with a 7-byte header
(crc32, little-endian length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4) and a protobuf `Record`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B transaction log"
    out, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer too small for a header: zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            out.append(rec)
            pending = b""
    return out


@dataclass
class OfflineRun:
    """What one offline run recorded: history rows, summary, artifacts, config, files."""

    dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    metric_defs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    """Media and tables arrive as nested keys ([key, "_type"], [key, "path"], ...): rebuild the dict."""
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def read_run(run_dir: Path) -> OfflineRun:
    """Parse `<run_dir>/wandb/offline-run-*/run-*.wandb` (the latest when there are several)."""
    (log,) = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))[-1:]
    run = OfflineRun(dir=log.parent)
    for rec in records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            row: dict[str, Any] = {}
            for i in rec.history.item:
                _put(row, [i.key] if i.key else list(i.nested_key), json.loads(i.value_json))
            run.history.append(row)
        elif kind == "summary":
            for i in rec.summary.update:
                _put(run.summary, [i.key] if i.key else list(i.nested_key), json.loads(i.value_json))
        elif kind == "artifact":
            a = rec.artifact
            run.artifacts.append(
                {
                    "name": a.name,
                    "type": a.type,
                    "aliases": list(a.aliases),
                    "digest": a.digest,
                    "metadata": json.loads(a.metadata or "{}"),
                    "files": [e.path for e in a.manifest.contents],
                }
            )
        elif kind == "metric":
            m = rec.metric
            run.metric_defs[m.name or m.glob_name] = m
        elif kind == "run":  # the config given to wandb.init
            for i in rec.run.config.update:
                run.config[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
        elif kind == "config":
            for i in rec.config.update:
                run.config[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
    return run

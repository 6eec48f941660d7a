"""What batch scoring writes: a folder of Parquet (or JSONL) part files, complete or absent.

Why a folder written aside and renamed: Ray writes one file per write task, from every node, and
a run can fail (or be killed) half-way; readers must never see a half output, and a previous
output must survive a failed run. The parts go to a hidden temp folder next to the output
(`.<name>.tmp-<id>`); the driver then counts the rows written against the valid records it
counted before scoring (an actor restarted mid-run must neither lose nor repeat a record), writes
`_SUCCESS` and renames the folder into place (one rename on a local or shared filesystem; an
existing output, with --overwrite, is swapped out and deleted after). Object stores have no
rename: there the parts are moved one by one and `_SUCCESS` is written last, so readers wait for it.

Rows are predict's rows (id, the prediction fields, model_version, predicted_at). JSONL lines
are byte for byte what predict writes. In Parquet a scalar field is a column of its type and a
field holding an object or a list (probabilities, label sets, SeaCat's sentences, neighbours) is
a JSON column (Parquet logical type JSON), so every row reads back as predict's object, key
order included (SeaCat's label_distribution is sorted by probability), whatever keys it has.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from feedback_nlp.core.errors import UserError
from feedback_nlp.operations.batch_inputs import filesystem, is_uri

FORMATS = ("parquet", "jsonl")
SUCCESS = "_SUCCESS"


class OutputError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Output:
    fs: Any
    path: str  # final folder, in the filesystem's terms
    temp: str  # where the parts are written first
    shown: str
    format: str
    overwrite: bool

    @property
    def local(self) -> bool:
        from pyarrow import fs as pafs

        return isinstance(self.fs, pafs.LocalFileSystem)


def plan_output(location: str, fmt: str, overwrite: bool) -> Output:
    """Check the output location before anything runs; nothing is created yet."""
    from pyarrow import fs as pafs

    if fmt not in FORMATS:
        raise OutputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    fs, path = filesystem(location)
    path = path.rstrip("/")
    parent, name = posixpath.split(path) if is_uri(location) else os.path.split(path)
    if not name:
        raise OutputError(f"--output {location}: name a folder to create")
    if not is_uri(location) and not os.path.isdir(parent):
        raise OutputError(f"--output {location}: folder {parent} does not exist")
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.File:
        raise OutputError(f"--output {location} is a file; batch scoring writes a folder of part files")
    if kind == pafs.FileType.Directory and not overwrite:
        raise OutputError(f"--output {location} already exists; pass --overwrite to replace it when the run succeeds")
    temp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:12]}"
    return Output(fs, path, temp, location, fmt, overwrite)


# --- rows -> blocks (in the actors) -----------------------------------------------------------


def json_line(row: Mapping[str, Any]) -> str:
    """predict's line for a row (cli/predict.py score_stream)."""
    return json.dumps(row, ensure_ascii=False)


def rows_to_table(rows: Sequence[Mapping[str, Any]], fmt: str) -> Any:
    """One Arrow block: a `line` column for JSONL; typed columns for Parquet (objects and lists
    as JSON columns)."""
    import pyarrow as pa

    if fmt == "jsonl":
        return pa.table({"line": pa.array([json_line(r) for r in rows], pa.string())})
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if any(isinstance(v, (dict, list, tuple)) for v in values):
            text = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
            columns[name] = pa.array(text, pa.json_(pa.string()))
        else:
            columns[name] = pa.array(values)
    return pa.table(columns)


def jsonl_sink(folder: str, fs: Any, min_rows_per_file: int) -> Any:
    """A Ray datasink writing each block's `line` column as JSONL part files."""
    from ray.data.datasource import BlockBasedFileDatasink

    class JsonLinesSink(BlockBasedFileDatasink):
        def write_block_to_file(self, block: Any, file: Any) -> None:
            lines = block.to_arrow().column("line").to_pylist()
            if lines:
                file.write(("\n".join(lines) + "\n").encode("utf-8"))

    return JsonLinesSink(folder, filesystem=fs, file_format="jsonl", min_rows_per_file=min_rows_per_file)


# --- publish ----------------------------------------------------------------------------------


def part_files(fs: Any, folder: str) -> list[Any]:
    from pyarrow import fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    names = [i for i in infos if i.type == pafs.FileType.File]
    return sorted((i for i in names if not posixpath.basename(i.path).startswith((".", "_"))), key=lambda i: i.path)


def count_rows(fs: Any, folder: str, fmt: str) -> int:
    """Rows in a written folder: Parquet footers, or the lines of JSONL parts."""
    import pyarrow.parquet as pq

    total = 0
    for info in part_files(fs, folder):
        if fmt == "parquet":
            with fs.open_input_file(info.path) as f:
                total += pq.ParquetFile(f).metadata.num_rows
        else:
            with fs.open_input_stream(info.path) as f:
                while chunk := f.read(1 << 20):
                    total += chunk.count(b"\n")
    return total


def publish(out: Output, summary: Mapping[str, Any]) -> None:
    """`_SUCCESS` (the run's summary) into the temp folder, then the folder into place."""
    from pyarrow import fs as pafs

    out.fs.create_dir(out.temp, recursive=True)  # a run with no rows wrote no part (and no folder)
    with out.fs.open_output_stream(f"{out.temp}/{SUCCESS}") as f:
        f.write((json.dumps(dict(summary), indent=1) + "\n").encode("utf-8"))
    exists = out.fs.get_file_info(out.path).type != pafs.FileType.NotFound
    if out.local:
        old = f"{out.temp}.old"
        if exists:
            os.rename(out.path, old)
        os.rename(out.temp, out.path)
        if exists:
            out.fs.delete_dir(old)
        return
    if exists:
        out.fs.delete_dir(out.path)
    out.fs.create_dir(out.path, recursive=True)
    for info in out.fs.get_file_info(pafs.FileSelector(out.temp, recursive=True)):
        if info.type == pafs.FileType.File and not info.path.endswith(SUCCESS):
            target = f"{out.path}/{info.path[len(out.temp) :].lstrip('/')}"
            out.fs.move(info.path, target)
    out.fs.move(f"{out.temp}/{SUCCESS}", f"{out.path}/{SUCCESS}")
    out.fs.delete_dir(out.temp)


def discard(out: Output) -> None:
    """Remove the temp folder of a failed run (the previous output, if any, is untouched)."""
    from pyarrow import fs as pafs

    if out.fs.get_file_info(out.temp).type != pafs.FileType.NotFound:
        out.fs.delete_dir(out.temp)


def read_output(location: str) -> list[dict[str, Any]]:
    """Every row of a batch-scoring output folder, as predict's objects (JSON columns decoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, folder = filesystem(location)
    rows: list[dict[str, Any]] = []
    for info in part_files(fs, folder):
        if info.path.endswith(".parquet"):
            with fs.open_input_file(info.path) as f:
                table = pq.read_table(f)
            decode = [isinstance(field.type, pa.JsonType) for field in table.schema]
            for row in table.to_pylist():
                rows.append({k: json.loads(v) if d and v is not None else v for (k, v), d in zip(row.items(), decode)})
        else:
            with fs.open_input_stream(info.path) as f:
                rows.extend(json.loads(line) for line in f.read().decode("utf-8").splitlines() if line)
    return rows

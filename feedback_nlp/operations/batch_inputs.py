"""What batch scoring reads: files, folders or globs, local or in object storage, JSONL or Parquet.

Why its own module: the input is named once on the command line but read on every node of a
cluster, so it is resolved on the driver to a fixed list of files (checked before anything
starts), and each file is then read by one Ray read task through a pyarrow filesystem (local,
`s3://`, `gs://`, `abfs://`, `hdfs://`: whatever `pyarrow.fs.FileSystem.from_uri` opens).
Records are decoded in those read tasks by the project's one decoder (core/records.py), so a
bad JSONL line reads `file:line: field 'x': ...` exactly as in `predict`, and a bad Parquet row
`file:row: field 'x': ...` (rows counted from 1, like lines). A read task never raises on bad
data: a file it cannot read at all is a problem at line 0 (`<file>`), like predict's missing file.

Two passes read the same files (memory stays flat, as in predict): `check` yields only the
problems and a count of valid records per block, which the driver collects before any model
loads; `score` yields only the valid records, as the JSON of the decoded record, which the
scoring actors turn back into records with the same decoder.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from feedback_nlp.core.errors import Problem, UserError
from feedback_nlp.core.records import decode_line, decode_row

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
GLOB_CHARS = re.compile(r"[*?\[]")
READ_CHUNK = 1 << 20  # bytes read from a JSONL stream at a time
CHECK_COLUMNS = ("source", "line", "field", "message", "valid", "bytes")


class InputError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class InputFile:
    fs: Any  # pyarrow.fs.FileSystem (picklable: shipped to the read task)
    path: str  # the filesystem's own path (bucket/key for an object store)
    shown: str  # how messages name it: the user's spelling, or the full URI
    format: str  # "jsonl" | "parquet"
    size: int


def is_uri(location: str) -> bool:
    return "://" in location


def filesystem(location: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) of a local path or a URI."""
    from pyarrow import fs

    if is_uri(location):
        try:
            return fs.FileSystem.from_uri(location)
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError / ValueError per scheme
            raise InputError(f"{location}: cannot open this location ({e})") from None
    return fs.LocalFileSystem(), os.path.abspath(location)


def _format_of(path: str, explicit: bool) -> str | None:
    name = path.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES) or explicit:  # a file named on its own is JSONL, as for predict
        return "jsonl"
    return None


def _hidden(relative: str) -> bool:
    """Files a dataset writer keeps beside its data (`_SUCCESS`, `.crc`, temp folders): never read."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _match(pattern: list[str], parts: list[str]) -> bool:
    """Path components against glob components; `**` matches any number of components."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])


def _listing(fs: Any, base: str) -> list[Any]:
    from pyarrow import fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)


def _join(shown: str, relative: str) -> str:
    return posixpath.join(shown.rstrip("/"), relative) if is_uri(shown) else os.path.join(shown, relative)


def _files_under(fs: Any, base: str, shown: str, pattern: list[str] | None) -> list[InputFile]:
    """The readable files below folder `base` (`shown` names it), matching `pattern` if given."""
    out = []
    for info in _listing(fs, base):
        rel = info.path[len(base) :].lstrip("/")
        fmt = _format_of(info.path, explicit=False)
        if fmt and not _hidden(rel) and (pattern is None or _match(pattern, rel.split("/"))):
            out.append(InputFile(fs, info.path, _join(shown, rel) if shown else rel, fmt, info.size))
    return out


def _expand_one(spec: str) -> list[InputFile]:
    from pyarrow import fs as pafs

    parts = spec.split("/")
    globbed = [i for i, p in enumerate(parts) if GLOB_CHARS.search(p)]
    if globbed:  # the folder before the first wildcard is listed, the rest matched per component
        shown = "/".join(parts[: globbed[0]])
        fs, base = filesystem(shown or ".")
        if fs.get_file_info(base).type != pafs.FileType.Directory:
            raise InputError(f"--input {spec}: no files match (no folder {shown or '.'})")
        out = _files_under(fs, base, shown, parts[globbed[0] :])
        if not out:
            raise InputError(f"--input {spec}: no .jsonl/.json/.parquet files match")
        return out
    fs, path = filesystem(spec)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [InputFile(fs, path, spec, _format_of(path, explicit=True) or "jsonl", info.size)]
    if info.type == pafs.FileType.Directory:
        out = _files_under(fs, path, spec, None)
        if not out:
            raise InputError(f"--input {spec}: no .jsonl/.json/.parquet files in this folder")
        return out
    raise InputError(f"--input {spec}: no such file or folder")


def expand_inputs(specs: Sequence[str]) -> list[InputFile]:
    """Every file the inputs name, in a stable order; a file named twice is an error (it would be scored twice)."""
    files: list[InputFile] = []
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        for f in _expand_one(spec):
            key = (f.fs.type_name, f.path)
            if key in seen:
                raise InputError(
                    f"--input: {f.shown} is named twice ({seen[key]} and {spec}); it would be scored twice"
                )
            seen[key] = spec
            files.append(f)
    return files


# --- read tasks (run on the cluster) ----------------------------------------------------------


def _jsonl_lines(f: Any) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) of every non-blank line, split on b"\\n" like a Python file."""
    lineno, rest = 0, b""
    while chunk := f.read(READ_CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for raw in lines:
            lineno += 1
            if raw.strip():
                yield lineno, raw
    if rest:
        lineno += 1
        if rest.strip():
            yield lineno, rest


def _decoded(file: InputFile, kind: str, field_map: dict[str, str], block_rows: int) -> Iterator[Any]:
    """Every record or Problem of one file, in file order."""
    try:
        if file.format == "parquet":
            import pyarrow.parquet as pq

            with file.fs.open_input_file(file.path) as f:
                row = 0
                for batch in pq.ParquetFile(f).iter_batches(batch_size=block_rows):
                    for obj in batch.to_pylist():
                        row += 1
                        yield decode_row(obj, file.shown, row, kind, field_map)
        else:
            with file.fs.open_input_stream(file.path) as f:
                for lineno, raw in _jsonl_lines(f):
                    yield decode_line(raw, file.shown, lineno, kind, field_map)
    except (OSError, ValueError) as e:  # unreadable file, not Parquet (ArrowInvalid is a ValueError)
        yield Problem(file.shown, 0, "<file>", f"cannot read this {file.format} file: {e}")


def payload(record: Any) -> str:
    """A decoded record as JSON (the record's own fields only): what travels to the actors."""
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False)


def read_blocks(file: InputFile, kind: str, field_map: dict[str, str], mode: str, block_rows: int) -> Iterator[Any]:
    """Arrow tables of one file: `score` -> a `payload` column of valid records, `block_rows` per
    table; `check` -> one row per problem plus one row per table counting its valid records and
    their payload characters (`valid`, `bytes`; no field)."""
    import pyarrow as pa

    if mode == "score":
        texts: list[str] = []
        for item in _decoded(file, kind, field_map, block_rows):
            if not isinstance(item, Problem):
                texts.append(payload(item))
                if len(texts) >= block_rows:
                    yield pa.table({"payload": pa.array(texts, pa.string())})
                    texts = []
        if texts:
            yield pa.table({"payload": pa.array(texts, pa.string())})
        return
    columns: dict[str, list[Any]] = {name: [] for name in CHECK_COLUMNS}

    def add(*values: Any) -> None:
        for name, value in zip(CHECK_COLUMNS, values):
            columns[name].append(value)

    def block() -> Any:
        types = (pa.string(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.int64())
        table = pa.table({name: pa.array(columns[name], t) for name, t in zip(CHECK_COLUMNS, types)})
        for values in columns.values():
            values.clear()
        return table

    valid = size = seen = 0
    for item in _decoded(file, kind, field_map, block_rows):
        seen += 1
        if isinstance(item, Problem):
            add(item.path, item.line, item.field, item.message, 0, 0)
        else:
            valid += 1
            size += len(payload(item))
        if seen >= block_rows:
            add(file.shown, 0, None, None, valid, size)
            yield block()
            valid = size = seen = 0
    add(file.shown, 0, None, None, valid, size)
    yield block()


def dataset(
    files: Sequence[InputFile], kind: str, field_map: dict[str, str], mode: str, block_rows: int, read_cpus: float
) -> Any:
    """A Ray dataset of `files`: one read task per file, each at `read_cpus` CPUs (a fraction, so
    reads run beside the actors instead of waiting for a whole free CPU)."""
    import functools

    import ray.data
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class RecordFiles(Datasource):
        def get_name(self) -> str:
            return f"ReadRecords[{mode}]"

        def estimate_inmemory_data_size(self) -> int:
            return sum(f.size for f in files)

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            return [
                ReadTask(
                    functools.partial(read_blocks, f, kind, field_map, mode, block_rows),
                    BlockMetadata(num_rows=None, size_bytes=f.size, input_files=(f.shown,), exec_stats=None),
                )
                for f in files
            ]

    return ray.data.read_datasource(RecordFiles(), num_cpus=read_cpus, override_num_blocks=len(files))

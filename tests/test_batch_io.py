"""Batch scoring's inputs and outputs without a Ray cluster: which files an --input names, how a
read task decodes JSONL lines and Parquet rows (the same records and messages as predict's
reader), rows -> Parquet/JSONL -> rows, and publishing a folder (local rename, object-store
moves). Needs pyarrow (the `batch` extra); the message for a missing extra is checked always."""

from __future__ import annotations

import json
import os
import sys

import pytest

from feedback_nlp.core.errors import Problem
from feedback_nlp.core.records import iter_jsonl


def test_score_without_the_batch_extra_is_one_clear_error(monkeypatch, tmp_path, capsys):
    from feedback_nlp.cli import score

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    rc = score.main(["--export", str(tmp_path), "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: feedback-nlp score needs Ray Data") and "pip install -e '.[batch]'" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--actors", "0"], "--actors: expected an integer >= 1, got '0'"),
        (["--actors", "two"], "--actors: expected an integer, got 'two'"),
        (["--cpus-per-actor", "-0.5"], "--cpus-per-actor: expected a number > 0, got '-0.5'"),
        (["--cpus-per-actor", "half"], "--cpus-per-actor: expected a number, got 'half'"),
        (["--rows-per-file", "0"], "--rows-per-file: expected an integer >= 1"),
    ],
)
def test_resource_flags_are_checked_as_they_are_parsed(flags, message, tmp_path, capsys):
    from feedback_nlp.cli import score

    with pytest.raises(SystemExit) as e:
        score.main(["--export", str(tmp_path), "--input", str(tmp_path), "--output", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--gpus-per-actor", "-1"], "--gpus-per-actor must be >= 0, got -1"),
        (["--max-restarts", "-2"], "--max-restarts must be >= 0, got -2"),
    ],
)
def test_negative_gpu_share_or_restarts_is_one_error_before_any_cluster(flags, message, tmp_path, capsys):
    pytest.importorskip("ray.data", reason="batch scoring needs the `batch` extra: pip install -e '.[batch]'")
    from feedback_nlp.cli import score

    rc = score.main(["--export", str(tmp_path), "--input", str(tmp_path), "--output", str(tmp_path / "o"), *flags])
    assert rc == 2 and capsys.readouterr().err == f"error: {message}\n" and not (tmp_path / "o").exists()


pa = pytest.importorskip("pyarrow", reason="batch scoring needs the `batch` extra: pip install -e '.[batch]'")
pq = pytest.importorskip("pyarrow.parquet")

from feedback_nlp.operations import batch_inputs, batch_outputs  # noqa: E402

LINES = [
    {"id": "a", "text": "the heel broke"},
    '{"text": ',  # invalid JSON
    "",  # blank: skipped, still counted
    {"text": 5},
    {"text": "no id, line 5", "language": "en"},
    {"id": "b", "text": "ok \ud800 not"},  # a lone surrogate
    {"id": True, "text": "x"},
]


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _decoded(path, kind="claim", mode="check", block_rows=3):
    (f,) = batch_inputs.expand_inputs([str(path)])
    return list(batch_inputs.read_blocks(f, kind, {}, mode, block_rows))


def test_a_jsonl_file_decodes_to_predicts_records_and_messages(tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", LINES)
    want = list(iter_jsonl(path, "claim"))  # predict's reader: the independent reference
    want_problems = [str(p) for p in want if not hasattr(p, "id")]
    want_payloads = [batch_inputs.payload(r) for r in want if hasattr(r, "id")]
    blocks = _decoded(path, block_rows=3)
    rows = [r for b in blocks for r in b.to_pylist()]
    problems = [str(Problem(r["source"], r["line"], r["field"], r["message"])) for r in rows if r["field"]]
    assert problems == want_problems and len(problems) == 4
    assert sum(r["valid"] for r in rows if r["field"] is None) == len(want_payloads) == 2
    got = [p for b in _decoded(path, mode="score", block_rows=1) for p in b.column("payload").to_pylist()]
    assert got == want_payloads
    given = {k: v for k, v in json.loads(got[1]).items() if v is not None}  # unset optional fields are null
    assert given == {"id": "5", "text": "no id, line 5", "language": "en"}


def test_a_file_without_a_final_line_break_and_with_crlf_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "one"}\r\n\r\n{"text": "three"}')
    got = [json.loads(p)["id"] for b in _decoded(path, mode="score") for p in b.column("payload").to_pylist()]
    assert got == [r.id for r in iter_jsonl(path, "claim")] == ["1", "3"]


def test_parquet_rows_get_the_same_field_checks_as_file_row_field(tmp_path):
    path = tmp_path / "claims.parquet"
    table = pa.table(
        {
            "id": ["p1", None, "p3", "p4"],
            "text": ["fine", "no id: row 2", None, "  "],
            "language": ["en", None, "de", "fr"],
            "extra": [1, 2, 3, 4],  # other fields are ignored, as in JSONL
        }
    )
    pq.write_table(table, path, row_group_size=2)
    rows = [r for b in _decoded(path, block_rows=2) for r in b.to_pylist()]
    problems = [f"{r['source']}:{r['line']}: field '{r['field']}': {r['message']}" for r in rows if r["field"]]
    assert problems == [
        f"{path}:3: field 'text': missing required field",
        f"{path}:4: field 'text': empty text",
    ]
    payloads = [json.loads(p) for b in _decoded(path, mode="score") for p in b.column("payload").to_pylist()]
    assert payloads == [
        {"id": "p1", "text": "fine", "language": "en", "escalated": None},
        {"id": "2", "text": "no id: row 2", "language": None, "escalated": None},
    ]
    # nested Parquet columns (a transcript's turns) decode like JSON objects
    tpath = tmp_path / "t.parquet"
    turns = [[{"speaker": "customer", "text": "hi"}], [{"speaker": "robot", "text": "x"}]]
    pq.write_table(pa.table({"id": ["t1", "t2"], "turns": turns}), tpath)
    rows = [r for b in _decoded(tpath, kind="transcript") for r in b.to_pylist()]
    assert [(r["line"], r["field"]) for r in rows if r["field"]] == [(2, "turns[0].speaker")]


def test_an_unreadable_parquet_file_is_a_problem_of_the_file_not_a_crash(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    rows = [r for b in _decoded(path) for r in b.to_pylist()]
    bad = [r for r in rows if r["field"]]
    assert len(bad) == 1 and (bad[0]["line"], bad[0]["field"]) == (0, "<file>") and "cannot read" in bad[0]["message"]


def test_inputs_files_folders_globs_and_uris(tmp_path, monkeypatch):
    for name in (
        "a.jsonl",
        "sub/b.json",
        "sub/deep/c.parquet",
        "notes.txt",
        "_SUCCESS",
        ".hidden.jsonl",
        "sub/_tmp/x.jsonl",
    ):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_text("{}\n")
    monkeypatch.chdir(tmp_path)

    def shown(*specs):
        return [(f.shown, f.format) for f in batch_inputs.expand_inputs(specs)]

    folder = [("in/a.jsonl", "jsonl"), ("in/sub/b.json", "jsonl"), ("in/sub/deep/c.parquet", "parquet")]
    assert shown("in") == folder and shown("in/") == folder
    assert shown("in/*.jsonl") == [("in/a.jsonl", "jsonl")]
    assert shown("in/**/*.parquet") == [("in/sub/deep/c.parquet", "parquet")]
    assert shown("in/sub/*") == [("in/sub/b.json", "jsonl")]  # one level, data files only
    assert shown("in/notes.txt") == [("in/notes.txt", "jsonl")]  # a file named on its own: JSONL, as for predict
    uri = f"file://{tmp_path}/in/**/*.json*"
    assert shown(uri) == [(f"file://{tmp_path}/in/a.jsonl", "jsonl"), (f"file://{tmp_path}/in/sub/b.json", "jsonl")]
    for specs, message in [
        (["missing.jsonl"], "--input missing.jsonl: no such file or folder"),
        (["in/*.csv"], "no .jsonl/.json/.parquet files match"),
        (["nope/*.jsonl"], "no folder nope"),
        (["in", "in/a.jsonl"], "in/a.jsonl is named twice"),
    ]:
        with pytest.raises(batch_inputs.InputError, match=message):
            batch_inputs.expand_inputs(specs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(batch_inputs.InputError, match="no .jsonl/.json/.parquet files in this folder"):
        batch_inputs.expand_inputs(["empty"])


ROWS = [
    {
        "id": "x",
        "label": "c",
        "label_distribution": {"c": 0.7, "a": 0.2, "b": 0.1},  # sorted by probability: order is data
        "sentence_weights": [0.25, 0.75],
        "main_question": {"rule1": "where is it", "rule2": None},
        "agent_first": False,
        "probability": 0.5,
        "model_version": "v1",
        "predicted_at": "2026-01-01T00:00:00.000+00:00",
    },
    {
        "id": "y",
        "label": "a",
        "label_distribution": {"a": 0.9, "b": 0.05, "c": 0.05},
        "sentence_weights": [],
        "main_question": {"rule1": None, "rule2": None},
        "agent_first": True,
        "probability": 1.0,
        "model_version": "v1",
        "predicted_at": "2026-01-01T00:00:00.000+00:00",
    },
]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_rows_round_trip_exactly_key_order_included(tmp_path, fmt):
    out = tmp_path / "out"
    out.mkdir()
    table = batch_outputs.rows_to_table(ROWS, fmt)
    if fmt == "parquet":
        pq.write_table(table, out / "part-0.parquet")
        assert isinstance(table.schema.field("label_distribution").type, pa.JsonType)
        assert table.schema.field("probability").type == pa.float64()
    else:
        (out / "part-0.jsonl").write_text("\n".join(table.column("line").to_pylist()) + "\n")
        assert table.column("line").to_pylist() == [json.dumps(r, ensure_ascii=False) for r in ROWS]  # predict's lines
    back = batch_outputs.read_output(str(out))
    assert back == ROWS and [list(r["label_distribution"]) for r in back] == [["c", "a", "b"], ["a", "b", "c"]]
    assert batch_outputs.count_rows(*batch_inputs.filesystem(str(out)), fmt) == 2


def test_output_checks_before_anything_runs(tmp_path):
    (tmp_path / "exists").mkdir()
    (tmp_path / "file").write_text("x")
    for location, overwrite, message in [
        (tmp_path / "exists", False, "already exists; pass --overwrite"),
        (tmp_path / "file", True, "is a file"),
        (tmp_path / "no" / "out", False, "does not exist"),
    ]:
        with pytest.raises(batch_outputs.OutputError, match=message):
            batch_outputs.plan_output(str(location), "parquet", overwrite)
    plan = batch_outputs.plan_output(str(tmp_path / "exists"), "parquet", True)
    assert os.path.dirname(plan.temp) == str(tmp_path) and os.path.basename(plan.temp).startswith(".exists.tmp-")


def _write_parts(fs, folder, n):
    fs.create_dir(folder, recursive=True)
    pq.write_table(batch_outputs.rows_to_table(ROWS[:n], "parquet"), f"{folder}/part-0.parquet", filesystem=fs)


def test_publish_replaces_an_old_output_whole_or_leaves_it(tmp_path):
    out_dir = tmp_path / "out"
    old = batch_outputs.plan_output(str(out_dir), "parquet", False)
    _write_parts(old.fs, old.temp, 1)
    batch_outputs.publish(old, {"records": 1})
    assert [r["id"] for r in batch_outputs.read_output(str(out_dir))] == ["x"]
    assert json.loads((out_dir / "_SUCCESS").read_text()) == {"records": 1}
    # a failed run: its temp folder goes, the old output stays as it was
    failed = batch_outputs.plan_output(str(out_dir), "parquet", True)
    _write_parts(failed.fs, failed.temp, 2)
    batch_outputs.discard(failed)
    assert [r["id"] for r in batch_outputs.read_output(str(out_dir))] == ["x"]
    new = batch_outputs.plan_output(str(out_dir), "parquet", True)
    _write_parts(new.fs, new.temp, 2)
    batch_outputs.publish(new, {"records": 2})
    assert [r["id"] for r in batch_outputs.read_output(str(out_dir))] == ["x", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old folder left


def test_publish_on_a_filesystem_without_rename_moves_parts_then_success(tmp_path):
    """The object-store path (no atomic folder rename), on a local folder behind pyarrow's Python
    filesystem wrapper, which is not a LocalFileSystem."""
    fsspec = pytest.importorskip("fsspec")
    from pyarrow import fs as pafs

    wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("file")))
    plan = batch_outputs.plan_output(str(tmp_path / "out"), "parquet", False)
    plan = batch_outputs.Output(wrapped, plan.path, plan.temp, plan.shown, "parquet", False)
    assert not plan.local
    _write_parts(wrapped, plan.temp, 2)
    batch_outputs.publish(plan, {"records": 2})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_SUCCESS", "part-0.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [r["id"] for r in batch_outputs.read_output(str(tmp_path / "out"))] == ["x", "y"]


def test_an_address_where_nothing_listens_fails_in_seconds_not_minutes():
    """Ray's own client retries a missing head for minutes; the probe answers at once."""
    import socket
    import time

    from feedback_nlp.operations.batch_cluster import ClusterError, probe

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        probe(f"127.0.0.1:{port}")  # something answers: Ray takes it from here
        probe(f"ray://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"--address 127.0.0.1:{port}: no Ray cluster answers there"):
        probe(f"127.0.0.1:{port}")  # closed now
    assert time.monotonic() - started < 5
    with pytest.raises(ClusterError, match="expected local, auto, HOST:PORT or ray://HOST:PORT"):
        probe("head:port")
    probe("local")
    probe("auto")

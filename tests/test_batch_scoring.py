"""`feedback-nlp score` on a local Ray cluster (2 CPUs, started once for this module): every task's
rows equal `predict`'s on the same records (the reference scorer, run here), bad records stop the
run before any actor exists or go to --rejects as predict lists them, a folder of JSONL and Parquet
files, an actor killed with SIGKILL mid-run (replaced; every record exactly once in the output),
a run that fails mid-way (the old output intact), and the installed command end to end.

Skipped without the `batch` extra (ray[data]); `make test` installs it. Tiny random models and a
few hundred records: the time goes to Ray's start and to one model load per actor pool."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="batch scoring needs the `batch` extra: pip install -e '.[batch]'")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from feedback_nlp.cli import predict  # noqa: E402
from feedback_nlp.operations import batch_scoring  # noqa: E402
from feedback_nlp.operations.batch_outputs import read_output  # noqa: E402
from feedback_nlp.operations.batch_scoring import ScoringJob, run  # noqa: E402
from tests.scale_helpers import job_env  # noqa: E402
from tests.serving_helpers import CLAIMS, free_port, safety_export  # noqa: E402

SCRIPT = str(Path(sys.executable).parent / "feedback-nlp")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local cluster for the module, as `score --address local` starts it (2 CPUs)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _predict(export: Path, inp: Path, tmp: Path, *extra: str) -> list[dict]:
    out = tmp / f"predict-{inp.stem}.jsonl"
    assert (
        predict.main(["--export", str(export), "--input", str(inp), "--output", str(out), "--device", "cpu", *extra])
        == 0
    )
    return [json.loads(x) for x in out.read_text().splitlines()]


def _same_rows(got: list[dict], want: list[dict]) -> None:
    """Equal rows but for predicted_at (a clock), matched by id (the output's order is Ray's)."""

    def strip(rows: list[dict]) -> list[dict]:
        return sorted(({k: v for k, v in r.items() if k != "predicted_at"} for r in rows), key=lambda r: r["id"])

    assert len(got) == len(want) and all(r["predicted_at"] for r in got)
    assert strip(got) == strip(want)


def _score(tmp: Path, export: Path, inputs, **kw) -> tuple[list[dict], dict, list[str]]:
    lines: list[str] = []
    job = ScoringJob(export=str(export), inputs=tuple(str(i) for i in inputs), output=str(tmp / "out"), **kw)
    summary = run(job, log=lines.append)
    return read_output(str(tmp / "out")), summary, lines


@pytest.fixture(scope="module")
def safety(tmp_path_factory):
    return safety_export(tmp_path_factory.mktemp("safety"))


def test_a_folder_of_jsonl_and_parquet_with_bad_records_skipped_equals_predict(safety, tmp_path):
    """Two JSONL files and a Parquet file in nested folders, bad lines and a bad row among them:
    rows equal predict's on the same records (the Parquet rows given to predict as JSONL), and
    the rejects are predict's rejects plus the Parquet row's, file by file."""
    folder = tmp_path / "in"
    first = [{"id": f"a{i}", "text": f"{CLAIMS[i % len(CLAIMS)]} {i}"} for i in range(150)]
    first[7] = {"id": "a7", "text": 7}
    first[40] = '{"id": "a40", "text": '
    a = _jsonl(folder / "a.jsonl", first)
    b = _jsonl(folder / "more" / "b.jsonl", [{"id": f"b{i}", "text": CLAIMS[i % len(CLAIMS)]} for i in range(60)])
    c = folder / "more" / "c.parquet"
    texts = [f"{CLAIMS[(i * 3) % len(CLAIMS)]} parquet" for i in range(90)]
    texts[12] = None
    pq.write_table(
        pa.table({"id": [f"c{i}" for i in range(90)], "text": texts, "n": list(range(90))}), c, row_group_size=32
    )
    c_as_jsonl = _jsonl(
        tmp_path / "c.jsonl", [{"id": f"c{i}", "text": t} for i, t in enumerate(texts) if t is not None]
    )
    want = []
    for f in (a, b, c_as_jsonl):
        want += _predict(safety, f, tmp_path, "--on-error", "skip", "--rejects", str(tmp_path / f"{f.stem}.rej"))
    rejects = tmp_path / "rejects.txt"
    got, summary, lines = _score(tmp_path, safety, [folder], on_error="skip", rejects=str(rejects))
    _same_rows(got, want)
    assert summary["records"] == 150 - 2 + 60 + 89 and summary["skipped"] == 3
    assert rejects.read_text().splitlines() == (tmp_path / "a.rej").read_text().splitlines() + [
        f"{c}:13: field 'text': missing required field"
    ]
    assert f"skipped: {a}:8: field 'text': expected a string, got int" in lines
    assert "records/s" in lines[-1] and "3 bad record(s) skipped" in lines[-1]
    assert (tmp_path / "out" / "_SUCCESS").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left


def test_bad_records_stop_the_run_before_any_actor_and_write_nothing(safety, tmp_path, monkeypatch):
    inp = _jsonl(tmp_path / "in.jsonl", [{"text": "ok"}, '{"text": ', {"text": 5}, {"text": "fine"}])
    pq.write_table(pa.table({"text": ["fine", None]}), tmp_path / "in.parquet")
    monkeypatch.setattr(batch_scoring, "_scoring_pool", lambda *a, **k: pytest.fail("an actor pool was created"))
    with pytest.raises(batch_scoring.DataValidationError) as e:
        _score(tmp_path, safety, [inp, tmp_path / "in.parquet"])
    assert [str(p) for p in e.value.problems] == [
        f"{inp}:2: field '<line>': invalid JSON: Expecting value at column 10",
        f"{inp}:3: field 'text': expected a string, got int",
        f"{tmp_path / 'in.parquet'}:2: field 'text': missing required field",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "in.parquet"]


def test_nothing_valid_to_score_is_an_empty_output_without_actors(safety, tmp_path, monkeypatch):
    inp = _jsonl(tmp_path / "in.jsonl", [{"text": 1}, "", '{"id": "x"}'])
    monkeypatch.setattr(batch_scoring, "_scoring_pool", lambda *a, **k: pytest.fail("an actor pool was created"))
    got, summary, lines = _score(tmp_path, safety, [inp], on_error="skip", rejects=str(tmp_path / "rej.txt"))
    assert got == [] and (summary["records"], summary["skipped"]) == (0, 2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_SUCCESS"]
    assert (tmp_path / "rej.txt").read_text().splitlines() == [
        f"{inp}:1: field 'text': expected a string, got int",
        f"{inp}:3: field 'text': missing required field",
    ]
    assert lines[-1].startswith(f"wrote 0 predictions to {tmp_path / 'out'}")


def _tiny_seacat(tmp: Path):
    import torch

    from feedback_nlp.demo_data.seacat import generate_transcripts
    from feedback_nlp.lightning_modules.seacat import SeaCat
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    rows = generate_transcripts(random.Random(1), 40)
    tiny = tiny_bert(tmp / "tiny", [t["text"] for r in rows for t in r["turns"]])
    torch.manual_seed(0)
    module = SeaCat(labels=sorted({r["label"] for r in rows}), pretrained=tiny, max_sentences=16, max_tokens=24)
    records = [{"id": f"t{i}", "turns": r["turns"]} for i, r in enumerate(rows)]
    return export_module(module.eval(), tmp / "export"), records


def _tiny_issues(tmp: Path, mcml: bool):
    import torch

    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    texts = [
        f"{w} {v}"
        for w in ("the zipper broke", "late delivery", "wrong size", "it smells")
        for v in ("again", "today", "x")
    ]
    tiny = tiny_bert(tmp / "tiny", texts)
    torch.manual_seed(0)
    if mcml:
        from feedback_nlp.lightning_modules.mcml_bert import McmlBertModule

        module = McmlBertModule(
            labels=["damaged", "delivery", "size", "smell"], pretrained=tiny, threshold=0.5, max_source_length=32
        )
    else:
        from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule

        module = MultiLevelIssuesModule(
            pretrained=tiny,
            architecture="encoder-decoder",
            max_source_length=32,
            max_target_length=6,
            simcse_model=tiny,
        )
    records = [{"id": f"f{i}", "text": texts[i % len(texts)] + f" {i}"} for i in range(60)]
    return export_module(module.eval(), tmp / "export"), records


def _repository(tmp: Path):
    from feedback_nlp.core.records import Question
    from feedback_nlp.universal_model import updates
    from feedback_nlp.universal_model.retrieval import RetrievalSettings

    fixture = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"
    rows = [json.loads(x) for x in fixture.read_text(encoding="utf-8").splitlines()]
    train = [Question(r["id"], r["question"], {"intent": r["intent"]}) for r in rows if r["split"] == "train"]
    root = tmp / "repo"
    updates.export(root, train, RetrievalSettings(method="bm25", k=5), ["intent"], [], {"weighting": "similarity"})
    for path in [root, *root.rglob("*")]:  # each actor opens it read-only: nothing may need to write
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    records = [{"id": r["id"], "question": r["question"]} for r in rows if r["split"] == "test"]
    return root, records


@pytest.mark.parametrize("task", ["seacat", "multilevel_issues", "mcml_bert", "universal_model"])
def test_every_task_scores_like_predict(task, tmp_path):
    if task == "seacat":
        export, records = _tiny_seacat(tmp_path)
    elif task == "universal_model":
        export, records = _repository(tmp_path)
    else:
        export, records = _tiny_issues(tmp_path, mcml=task == "mcml_bert")
    before = {p: p.stat().st_mtime_ns for p in export.rglob("*")}
    inp = _jsonl(tmp_path / "in.jsonl", records)
    want = _predict(export, inp, tmp_path, "--batch-size", "8")
    got, summary, _ = _score(tmp_path, export, [inp], batch_size=8)
    _same_rows(got, want)
    assert summary["task"] == task and summary["records"] == len(records)
    assert {p: p.stat().st_mtime_ns for p in export.rglob("*")} == before  # the export is only read


def test_a_repository_updated_mid_run_fails_the_run_instead_of_mixing_versions(tmp_path):
    """The actor (called here in-process, as Ray calls it) compares every batch's model version
    with the one checked at the start; a `repo delete` in between is refused, not mixed in."""
    from feedback_nlp.core.records import decode_row
    from feedback_nlp.operations.batch_actor import ExportChanged, Scorer
    from feedback_nlp.operations.batch_inputs import payload
    from feedback_nlp.serving.registry import preflight
    from feedback_nlp.serving.runtime import RuntimeOptions
    from feedback_nlp.universal_model import updates

    root, records = _repository(tmp_path)
    for path in [root, *root.rglob("*")]:  # writable again: this test updates it
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    version = preflight(root, RuntimeOptions())["model_version"]
    scorer = Scorer(str(root), "question", RuntimeOptions(batch_size=4), 1, "jsonl", version)
    batch = pa.table({"payload": [payload(decode_row(r, "t", i + 1, "question")) for i, r in enumerate(records[:6])]})
    lines = scorer(batch).column("line").to_pylist()
    assert [json.loads(x)["model_version"] for x in lines] == [version] * 6
    updates.delete(root, [json.loads(lines[0])["neighbors"][0]["id"]])
    with pytest.raises(ExportChanged, match=f"the run started with {version}"):
        scorer(batch)
    with pytest.raises(ExportChanged):  # a new actor (a restart) on the updated repository refuses too
        Scorer(str(root), "question", RuntimeOptions(batch_size=4), 1, "jsonl", version)


def _actor_pids() -> set[int]:
    """The scoring actors among this test's own processes (the cluster is its child)."""
    import psutil

    found = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "Scorer" in " ".join(p.cmdline()):
                found.add(p.pid)
        except psutil.Error:
            pass
    return found


def _rows_written(temp_parent: Path) -> int:
    """Rows in the complete part files of a running job's temp folder (a file being written is skipped)."""
    n = 0
    for part in temp_parent.glob(".out.tmp-*/*.parquet"):
        try:
            n += pq.ParquetFile(part).metadata.num_rows
        except (OSError, pa.ArrowInvalid):
            pass
    return n


def _kill_an_actor_mid_run(job: ScoringJob, temp_parent: Path, total: int) -> tuple[threading.Thread, list, int, set]:
    """Run `job` in a thread; SIGKILL its scoring actor once some rows, but under half of them,
    are written (so the actor has scored and still has work); return the actor pids seen."""
    result: list = []

    def target():
        try:
            result.append(run(job, log=lambda line: None))
        except BaseException as e:  # noqa: BLE001 (handed to the test)
            result.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    deadline, seen = time.monotonic() + 300, set()
    while time.monotonic() < deadline and thread.is_alive():
        written, pids = _rows_written(temp_parent), _actor_pids()
        seen |= pids
        if 0 < written < total / 2 and pids:
            victim = min(pids)
            os.kill(victim, signal.SIGKILL)
            assert thread.is_alive()
            while thread.is_alive():  # the replacement, if any
                seen |= _actor_pids()
                time.sleep(0.1)
            return thread, result, victim, seen
        assert written < total / 2, "half the rows were written before the actor started: make the run longer"
        time.sleep(0.05)
    pytest.fail("no rows were written while the run was going")


def test_an_actor_killed_mid_run_is_replaced_and_every_record_is_written_once(safety, tmp_path):
    records = [{"id": f"r{i}", "text": f"{CLAIMS[i % len(CLAIMS)]} {i}"} for i in range(1200)]
    inp = _jsonl(tmp_path / "in.jsonl", records)
    job = ScoringJob(
        export=str(safety),
        inputs=(str(inp),),
        output=str(tmp_path / "out"),
        batch_size=8,
        rows_per_call=16,
        rows_per_file=16,
    )
    thread, result, victim, seen = _kill_an_actor_mid_run(job, tmp_path, len(records))
    thread.join(600)
    assert not isinstance(result[0], BaseException), result[0]
    assert seen - {victim}, "no actor replaced the killed one"
    rows = read_output(str(tmp_path / "out"))
    assert Counter(r["id"] for r in rows) == Counter(r["id"] for r in records)  # each exactly once
    assert result[0]["records"] == len(records)
    want = _predict(safety, inp, tmp_path, "--batch-size", "8")
    _same_rows(rows, want)


def test_a_run_that_fails_mid_way_leaves_the_old_output_whole(safety, tmp_path):
    """No restarts allowed: the kill fails the run; the previous output and nothing else remains."""
    inp = _jsonl(tmp_path / "in.jsonl", [{"id": f"r{i}", "text": CLAIMS[i % len(CLAIMS)]} for i in range(1200)])
    old = _jsonl(tmp_path / "out" / "part-old.jsonl", [{"id": "old"}])
    job = ScoringJob(
        export=str(safety),
        inputs=(str(inp),),
        output=str(tmp_path / "out"),
        batch_size=8,
        rows_per_call=16,
        rows_per_file=16,
        max_restarts=0,
        overwrite=True,
    )
    thread, result, _, _ = _kill_an_actor_mid_run(job, tmp_path, 1200)
    thread.join(600)
    assert isinstance(result[0], ray.exceptions.RayError) and "actor died" in str(result[0]), result[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["part-old.jsonl"] and old.read_text() == '{"id": "old"}\n'


def test_the_installed_command_from_object_store_uris_to_jsonl(safety, tmp_path):
    """`feedback-nlp score` as a user runs it: its own local cluster, the export and a glob of
    inputs as URIs (file:// stands for s3:// here: the same pyarrow filesystem path), JSONL out
    with predict's lines; exit 0, nothing on stderr, a final line with records/s."""
    inp = _jsonl(
        tmp_path / "in" / "claims.jsonl", [{"id": f"r{i}", "text": CLAIMS[i % len(CLAIMS)]} for i in range(120)]
    )
    want = _predict(safety, inp, tmp_path)
    env = job_env(FEEDBACK_NLP_EXPORT_CACHE=str(tmp_path / "cache"))
    args = [
        "--export",
        f"file://{safety}",
        "--input",
        f"file://{tmp_path}/in/*.jsonl",
        "--output",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(
        [SCRIPT, "score", *args, "--format", "jsonl", "--actors", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and proc.stderr == "", (proc.stdout[-3000:], proc.stderr[-3000:])
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"wrote 120 predictions to {tmp_path / 'out'} (jsonl") and "records/s" in last, last
    assert "2 actor(s) x 0.75 CPU" in last
    _same_rows(read_output(str(tmp_path / "out")), want)
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one copy of the export for the node's actors
    again = subprocess.run([SCRIPT, "score", *args], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and again.stderr.startswith("error: --output") and "already exists" in again.stderr


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    """Exit 2, no traceback, one `error:` line (detail lines indented), as tests/test_cli.py checks."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), proc.stderr
    assert [x for x in lines[1:] if not x.startswith("  ")] == [], proc.stderr
    return proc.stderr


def test_the_installed_command_joins_a_cluster_by_address_and_handles_bad_records(safety, tmp_path):
    """`--address` = this module's running cluster (what `ray start --head` gives a user): bad
    records stop the run with one error line naming file:line:field and nothing written; with
    `--on-error skip` they go to --rejects and the rest equal predict's rows; the joined cluster
    is left running; bad flags and a cluster that is not there are one error line too."""
    address = ray.get_runtime_context().gcs_address
    records = [{"id": f"r{i}", "text": CLAIMS[i % len(CLAIMS)]} for i in range(40)]
    records[3] = '{"id": "r3", "text": '
    records[9] = {"id": "r9", "text": ["a list"]}
    inp = _jsonl(tmp_path / "in.jsonl", records)
    base = ["score", "--export", str(safety), "--input", str(inp), "--address", address]
    env = job_env()

    def score(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SCRIPT, *base, *args], env=env, capture_output=True, text=True, timeout=600)

    err = _one_error_line(score("--output", str(tmp_path / "stopped")))
    assert f"{inp}:4: field '<line>': invalid JSON" in err and f"{inp}:10: field 'text': expected a string" in err
    assert "--on-error skip" in err and not (tmp_path / "stopped").exists()
    rejects = tmp_path / "rejects.txt"
    args = ["--output", str(tmp_path / "out"), "--on-error", "skip", "--rejects", str(rejects), "--format", "jsonl"]
    proc = score(*args, "--batch-size", "4")
    assert proc.returncode == 0 and proc.stderr == "", (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "38 predictions" in proc.stdout.strip().splitlines()[-1] and "records/s" in proc.stdout
    assert "Total Progress" in proc.stdout  # Ray Data's progress, logged when stdout is not a terminal
    # predict's chunks of 4 as the actors' (other shapes differ in the last float bits)
    want = _predict(
        safety, inp, tmp_path, "--batch-size", "4", "--on-error", "skip", "--rejects", str(tmp_path / "p.rej")
    )
    _same_rows(read_output(str(tmp_path / "out")), want)
    assert rejects.read_text().splitlines() == (tmp_path / "p.rej").read_text().splitlines()
    assert [line.split(": field ")[0] for line in rejects.read_text().splitlines()] == [f"{inp}:4", f"{inp}:10"]
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2  # the joined cluster still runs
    assert "--actors" in _one_error_line(score("--output", str(tmp_path / "o2"), "--actors", "0"))
    assert "--batch-size" in _one_error_line(score("--output", str(tmp_path / "o2"), "--batch-size", "0"))
    free = free_port()
    err = _one_error_line(score("--output", str(tmp_path / "o2"), "--address", f"127.0.0.1:{free}"))
    assert f"--address 127.0.0.1:{free}: no Ray cluster answers there" in err
    assert not (tmp_path / "o2").exists()


def test_actor_resources_leave_room_for_reads_and_refuse_what_the_cluster_lacks():
    """On this module's 2-CPU cluster: the default shares split 2 - 0.5 CPU between the actors
    (reads and writes keep 0.5, so 2 actors at Ray's default 1 CPU, which hang, are refused);
    a GPU asked of a GPU-less cluster is refused when the command started it, and only warned
    about on a joined cluster (it may autoscale)."""
    from feedback_nlp.operations.batch_cluster import ClusterError, plan_resources

    warnings: list[str] = []
    one = plan_resources(1, None, 0.0, True, warnings.append)
    two = plan_resources(2, None, 0.0, True, warnings.append)
    assert (one.cpus, one.threads, two.cpus, two.threads) == (1.5, 2, 0.75, 1)
    assert plan_resources(3, 0.5, 0.0, True, warnings.append).cpus == 0.5  # 3 x 0.5 + 0.5 = 2: fits
    with pytest.raises(ClusterError, match=r"2 actor\(s\) x 1 CPU \+ 0.5 CPU for reads and writes"):
        plan_resources(2, 1.0, 0.0, True, warnings.append)
    with pytest.raises(ClusterError, match=r"1 actor\(s\) x 1 GPU is more than the cluster's 0 GPU"):
        plan_resources(1, None, 1.0, True, warnings.append)
    assert warnings == []
    gpu = plan_resources(1, None, 1.0, False, warnings.append)
    assert (gpu.cpus, gpu.gpus) == (1.0, 1.0) and len(warnings) == 1 and "waiting for the cluster" in warnings[0]

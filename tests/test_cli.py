"""`feedback-nlp` through the installed console script (not `python -m`): every subcommand answers
--help quickly, exits 0 with nothing on stderr when it succeeds, and exits 2 with one `error:`
line (never a traceback) on bad arguments or bad input, creating nothing.

Why the installed script: a console script wraps `main()` in `sys.exit(main())`, so a `main`
that returns a dict exits 1 after every success; only running the script shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from feedback_nlp.cli.main import COMMANDS
from tests.scale_helpers import REPO, job_env
from tests.serving_helpers import free_port, http

SCRIPT = str(Path(sys.executable).parent / "feedback-nlp")
FIXTURE = REPO / "tests" / "fixtures" / "clinc150_sample.jsonl"
HELP_BOUND_S = 8.0  # generous for a loaded CI machine; bench/cli_help.py measures the 2 s target


def run(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *map(str, args)], cwd=cwd, env=env or job_env(), capture_output=True, text=True, timeout=timeout
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command (its other stderr lines, if any, indent details)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), proc.stderr
    assert [x for x in lines[1:] if not x.startswith("  ")] == [], proc.stderr
    return proc.stderr


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert proc.stderr == "", proc.stderr[-3000:]
    return proc.stdout


def test_the_command_lists_its_subcommands_and_python_m_is_the_same():
    out = ok(run("--help"))
    assert all(f"  {name}" in out for name in COMMANDS)
    same = subprocess.run([sys.executable, "-m", "feedback_nlp", "--help"], capture_output=True, text=True)
    assert same.returncode == 0 and same.stdout == out
    assert "did you mean 'train'" in one_error_line(run("trian"))
    assert run().returncode == 2


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_has_a_fast_help_listing_its_flags(command):
    start = time.perf_counter()
    out = ok(run(command, "--help"))
    elapsed = time.perf_counter() - start
    assert elapsed < HELP_BOUND_S, f"{command} --help took {elapsed:.1f} s"
    assert out.startswith(f"usage: feedback-nlp {command}")
    flags = {"train": "--config", "predict": "--on-error", "export": "--run-dir", "serve": "--max-batch-size"}
    flags |= {"sweep": "--trials", "repo": "stats", "monitor": "--outcomes", "compare": "--expect-sha256"}
    flags |= {"score": "--address"}
    assert flags[command] in out
    if command in ("serve", "predict"):
        assert "--prediction-log" in out and "--log-text" in out


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "repo"])
def test_an_unknown_flag_is_one_error_line(command):
    assert f"(feedback-nlp {command} --help lists the options)" in one_error_line(run(command, "--no-such-flag"))


@pytest.fixture(scope="module")
def seacat_run(tmp_path_factory):
    """A tiny SeaCat trained through `feedback-nlp train` (the success path of train itself)."""
    from tests.tiny_models import tiny_seacat_run

    tmp = tmp_path_factory.mktemp("cli")
    data, overrides = tiny_seacat_run(tmp, 48, 3)
    base = ["--config", "configs/experiment/seacat_demo.yaml", *overrides]
    out = ok(run("train", *base, f"output_root={tmp / 'outputs'}"))
    assert "test/acc" in out
    (run_dir,) = (tmp / "outputs" / "seacat_demo").iterdir()
    return tmp, data, base, run_dir


def test_train_export_predict_succeed_quietly_and_refuse_bad_input(seacat_run):
    tmp, data, base, run_dir = seacat_run
    # train: a misspelt key, a value the constructor refuses; nothing written
    before = sorted(p.name for p in (tmp / "outputs" / "seacat_demo").iterdir())
    assert "did you mean 'trainer.max_epochs'" in one_error_line(run("train", *base, "trainer.max_epoch=1"))
    assert "model.rule" in one_error_line(run("train", *base, "model.rule=rule9", f"output_root={tmp / 'outputs'}"))
    assert sorted(p.name for p in (tmp / "outputs" / "seacat_demo").iterdir()) == before
    # export
    (tmp / "empty").mkdir()
    assert "is not a run directory" in one_error_line(run("export", "--run-dir", tmp / "empty"))
    ok(run("export", "--run-dir", run_dir))
    assert (run_dir / "export" / "manifest.json").is_file()
    # predict: the input is checked before the model loads
    err = one_error_line(run("predict", "--export", run_dir / "export", "--input", tmp / "nope.jsonl", "--output", "o"))
    assert "no such file" in err
    bad = tmp / "bad.jsonl"
    bad.write_text('{"id": "a", "turns": [{"speaker": "customer", "text": "hot \\ud800 plate"}]}\n')
    err = one_error_line(run("predict", "--export", run_dir / "export", "--input", bad, "--output", tmp / "o.jsonl"))
    assert f"{bad}:1: field 'turns[0].text': character 4 is a lone UTF-16 surrogate" in err
    assert not (tmp / "o.jsonl").exists()
    out = ok(run("predict", "--export", run_dir / "export", "--input", data, "--output", tmp / "rows.jsonl"))
    assert "wrote 48 predictions" in out


def _wait_healthy(proc: subprocess.Popen, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if http("GET", f"http://127.0.0.1:{port}/health", timeout=5)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_serve_stops_on_sigterm_quietly_and_removes_its_temp_dirs(seacat_run, tmp_path, request):
    _, _, _, run_dir = seacat_run
    if not (run_dir / "export").is_dir():
        ok(run("export", "--run-dir", run_dir))
    # a temp folder too long for the workers' Unix sockets: one error line before any work
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    err = one_error_line(run("serve", "--export", run_dir / "export", env=job_env(TMPDIR=str(deep))))
    assert "too long for the worker processes' Unix sockets" in err
    scratch = Path(tempfile.mkdtemp(prefix="fs-", dir="/tmp"))  # short: pytest's tmp_path can exceed the limit
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    env = job_env(TMPDIR=str(scratch))
    # a failed start (an export that is not one): exit 2, nothing left behind
    assert "is not an export" in one_error_line(run("serve", "--export", tmp_path, env=env))
    for _attempt in range(3):  # a free port can be taken by a parallel test's server before ours binds it
        port = free_port()
        proc = subprocess.Popen(
            [SCRIPT, "serve", "--export", run_dir / "export", "--device", "cpu", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        healthy = _wait_healthy(proc, port, 240)
        if healthy or proc.poll() is None:
            break
        _, err = proc.communicate()
        assert proc.returncode == 2 and "port" in err, err[-3000:]  # only a lost port race is retried
    try:
        assert healthy, "serve did not answer /health in 240 s"
        assert sorted(p.name.rsplit("-", 1)[0] for p in scratch.iterdir() if p.name.startswith("feedback")) == [
            "feedback-serve-metrics",
            "feedback-serve-ready",
        ]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert [p.name for p in scratch.iterdir() if p.name.startswith("feedback-serve")] == []


def test_serve_refuses_bad_routing_flags_with_one_error_line_before_any_model_loads(seacat_run, tmp_path):
    _, _, _, run_dir = seacat_run
    if not (run_dir / "export").is_dir():
        ok(run("export", "--run-dir", run_dir))
    export = run_dir / "export"
    two = ["--export", f"prod={export}", "--export", f"cand={export}", "--device", "cpu"]
    # through the installed script: one flag check and one routing check (every case: test_serving_traffic.py)
    for flags, message in [
        (["--shadow", "cand"], "--shadow needs --prediction-log"),
        (["--canary", "nope"], "--canary 'nope' is not an --export name (prod, cand)"),
    ]:
        assert message in one_error_line(run("serve", *two, *flags, "--port", str(free_port())))


def test_sweep_refuses_a_misspelt_override_before_creating_its_study(seacat_run, tmp_path):
    _, _, base, _ = seacat_run
    spec = {
        "name": "cli-sweep",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "test/acc", "goal": "maximize"},
        "parameters": {"model.optim.lr": {"values": [0.001]}},
        "command": ["${env}", "python", "train.py", *base, f"output_root={tmp_path / 'outputs'}", "${args_no_hyphens}"],
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(spec))
    err = one_error_line(run("sweep", "--sweep", path, "--out", tmp_path / "study", "trainer.max_epoch=1"))
    assert "did you mean 'trainer.max_epochs'" in err and not (tmp_path / "study").exists()
    out = ok(run("sweep", "--sweep", path, "--out", tmp_path / "study"))
    assert "sweep.json" in out and (tmp_path / "study" / "sweep.json").is_file()


def test_seed_sweep_refuses_bad_input_before_creating_anything_and_succeeds_quietly(seacat_run, tmp_path):
    _, _, base, _ = seacat_run
    config, overrides = base[1], base[2:]
    out = tmp_path / "seeds"
    # (bad --seeds values and seed= overrides: tests/test_multilevel_robustness.py, in-process)
    bad = ("trainer.max_epoch=1",)
    err = one_error_line(run("sweep", "--config", config, "--seeds", "2", "--out", out, *overrides, *bad))
    assert "did you mean 'trainer.max_epochs'" in err and not out.exists()
    printed = ok(run("sweep", "--config", config, "--seeds", "0,1", "--out", out, "--metrics", "test/acc", *overrides))
    row = next(line for line in printed.splitlines() if line.startswith("| test/acc |"))
    values = [json.loads((out / f"seed_{s}" / "metrics.json").read_text())["test/acc"] for s in (0, 1)]
    cells = [c.strip() for c in row.split("|")[2:-1]]  # seed 0, seed 1, mean, std, min, max
    assert cells[:2] == [f"{v:.4f}" for v in values] and float(cells[2]) == pytest.approx(sum(values) / 2, abs=6e-5)
    assert json.loads((out / "seeds.json").read_text())["seeds"] == [0, 1]


def test_repo_commands_succeed_quietly_and_never_create_a_repository_by_mistake(tmp_path):
    config = "configs/experiment/universal_model_demo.yaml"
    repo = tmp_path / "repo"
    common = [f"repository.path={FIXTURE}", "labels.categorical=[intent]", "labels.numeric=[]"]
    ok(run("repo", "export", "--config", config, *common, "retrieval.method=bm25", f"out={repo}"))
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": "n1", "question": "where am i right now", "intent": "current_location"}) + "\n")
    assert "add of 1 question(s) committed" in ok(run("repo", "add", repo, "--questions", new))
    assert "delete of 1 question(s) committed" in ok(run("repo", "delete", repo, "--ids", "n1"))
    stats = json.loads(ok(run("repo", "stats", repo, "--json")))
    assert stats["questions"] == 400
    for command, args in (("add", ["--questions", new]), ("delete", ["--ids", "n1"])):
        missing = tmp_path / f"not-a-repo-{command}"
        assert "not a question repository" in one_error_line(run("repo", command, missing, *args))
        assert not missing.exists()
    assert "unknown repo command" in one_error_line(run("repo", "nope"))
    assert "unrecognized arguments" in one_error_line(run("repo", "stats", repo, "--no-such-flag"))
    shutil.rmtree(repo)

"""Sweeps: configs/sweeps/*.yaml are W&B sweep definitions train.py accepts as the agent passes
them, and the local Optuna `sweep` runs trials as run dirs, resumes, prunes and reports."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from feedback_nlp.cli import sweep, train
from feedback_nlp.core.config import load_config
from tests.scale_helpers import REPO
from tests.tiny_models import tiny_seacat_run

SWEEPS = sorted((REPO / "configs/sweeps").glob("*.yaml"))
TRAIN_SWEEPS = [p for p in SWEEPS if yaml.safe_load(p.read_text())["program"] == "train.py"]


def agent_command(spec: dict, params: dict) -> list[str]:
    """The argv a W&B agent runs for one parameter set: wandb's own formatter and macro expansion
    (wandb/wandb_agent.py), with ${env} and ${interpreter} left out."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    sweep_vars["program"] = [spec["program"]]
    out = []
    for c in map(str, spec["command"]):
        if c.startswith("${") and c.endswith("}"):
            out += [] if c in ("${env}", "${interpreter}") else sweep_vars.get(c[2:-1], [])
        else:
            out.append(c)
    return out


def grid(spec: dict) -> list[dict]:
    space = sweep.grid_space(spec)
    return [dict(zip(space, combo)) for combo in itertools.product(*space.values())]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_definitions_are_valid_wandb_sweeps(path):
    spec = sweep.load_sweep(path)
    assert (
        spec["program"] in ("train.py", "feedback_nlp/scripts/label_efficiency.py")
        and (REPO / spec["program"]).is_file()
    )
    assert any(m in spec["command"] for m in ("${args_no_hyphens}", "${args}"))
    if spec["method"] == "grid":
        assert len(grid(spec)) >= 2  # an ablation compares at least two settings
        assert "early_terminate" not in spec  # an ablation keeps every row: nothing pruned


@pytest.mark.parametrize("path", TRAIN_SWEEPS, ids=[p.stem for p in TRAIN_SWEEPS])
def test_train_py_accepts_every_agent_command_unchanged(path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # a W&B agent runs its command (relative config path) from the repository root
    spec = sweep.load_sweep(path)
    # bayes: two samples inside each range (drawn floats print with a dot: 2.5e-05, 0.0005) and each value
    points = (
        grid(spec)
        if spec["method"] == "grid"
        else [
            {
                k: (p["values"][i % len(p["values"])] if "values" in p else [p["min"] * 2.5, p["max"] / 2][i % 2])
                for k, p in spec["parameters"].items()
            }
            for i in range(2)
        ]
    )
    for params in points:
        argv = agent_command(spec, params)
        assert argv[0] == "train.py"
        args = train.parse_args(argv[1:])  # train.py's own argument parser...
        cfg = load_config(REPO / args.config, args.overrides)  # ...and config loader
        for key, value in params.items():  # each value lands at its key with its YAML type
            got = cfg
            for part in key.split("."):
                got = got[part]
            assert got == value and type(got) is type(value), (key, got, value)
        assert cfg.logger.wandb.enabled is True
        assert train.main([*argv[1:], "--print-config"]) == {}  # the whole entry point, unchanged args


@pytest.fixture(scope="module")
def tiny_seacat(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    _, overrides = tiny_seacat_run(tmp, 60, 9)
    fixed = [*overrides, "trainer.max_epochs=2", "run_predict=false", "trainer.enable_progress_bar=false"]
    spec = {
        "name": "tiny_seacat",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "test/acc", "goal": "maximize"},
        "parameters": {"model.head_lr": {"values": [0.05, 0.01, 0.0]}, "seed": {"value": 0}},
        "command": [
            "${env}",
            "${interpreter}",
            "${program}",
            "--config",
            str(REPO / "configs/experiment/seacat_demo.yaml"),
            *fixed,
            "${args_no_hyphens}",
        ],
    }
    path = tmp / "tiny_seacat.yaml"
    path.write_text(yaml.safe_dump(spec))
    return tmp, path, spec


@pytest.mark.slow
def test_local_sweep_runs_three_trials_resumes_and_writes_table_and_best_config(tiny_seacat):
    tmp, path, _ = tiny_seacat
    out = tmp / "study"
    report = sweep.run_sweep(path, out, trials=3, pruner="none")
    trials = report["trials"]
    assert len(trials) == 3 and {t["state"] for t in trials} == {"complete"}
    assert sorted(t["params"]["model.head_lr"] for t in trials) == [0.0, 0.01, 0.05]  # the grid, each once
    for t in trials:  # every trial is an ordinary run dir whose metrics.json holds the reported value
        run_dir = Path(t["run_dir"])
        assert run_dir.parent == out / "trials"
        assert t["test/acc"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["test/acc"])
        assert f"head_lr: {t['params']['model.head_lr']}" in (run_dir / "config.yaml").read_text()
        heatmap = run_dir / "plots" / "attention_heatmap.png"  # the 002 §2.4 figure of each run
        assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = max(trials, key=lambda t: t["test/acc"])
    assert report["best"]["value"] == pytest.approx(best["test/acc"])
    assert trials[0]["trial"] == report["best"]["trial"]  # the table lists the best first
    assert (out / "best_config.yaml").read_text() == (Path(best["run_dir"]) / "config.yaml").read_text()
    table = (out / "sweep.md").read_text()
    assert "**test/acc**" in table and len([line for line in table.splitlines() if line.startswith("| ")]) == 4
    # resumable: the same command finds the finished grid in study.db and trains nothing more
    again = sweep.run_sweep(path, out, trials=3, pruner="none")
    assert [t["trial"] for t in again["trials"]] == [t["trial"] for t in trials]
    study = optuna.load_study(study_name="tiny_seacat", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3


@pytest.mark.slow
def test_pruned_trial_stops_at_its_first_validation(tiny_seacat):
    tmp, path, _ = tiny_seacat
    out = tmp / "pruned"
    # any val/loss above 0 is "bad": the trial must stop after one validation, before test and export
    report = sweep.run_sweep(path, out, trials=1, pruner="above:0", overrides=["trainer.max_epochs=3"])
    (trial,) = report["trials"]
    assert trial["state"] == "pruned" and "best" not in report
    study = optuna.load_study(study_name="tiny_seacat", storage=f"sqlite:///{out / 'study.db'}")
    (t,) = study.trials
    assert len(t.intermediate_values) == 1  # one validation of the three epochs
    assert not (out / "trials" / "000" / "metrics.json").exists()


def test_ddp_child_rank_trains_rank_zeros_trial_without_asking_the_study(tiny_seacat, tmp_path, monkeypatch):
    _, path, _ = tiny_seacat
    shared = {"number": 7, "params": {"model.head_lr": 0.01, "seed": 0}, "run_dir": str(tmp_path / "trial7")}
    monkeypatch.setenv(sweep.TRIAL_ENV, json.dumps(shared))
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's DDP launcher sets for the rank it starts
    seen = {}
    monkeypatch.setattr(
        sweep,
        "run_trial",
        lambda config, fixed, params, run_dir, *a: seen.update(params=params, run_dir=run_dir, config=config),
    )
    assert sweep.run_sweep(path, tmp_path / "study", trials=3) == {"trial": 7, "rank": "child"}
    assert seen["params"] == shared["params"] and str(seen["run_dir"]) == shared["run_dir"]
    assert not (tmp_path / "study").exists()  # no study opened, nothing asked


def test_bad_sweep_definitions_name_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "method": "grid",
                "metric": {"name": "test/acc", "goal": "up"},
                "parameters": {"a": {"values": [1]}},
                "command": [],
            }
        )
    )
    with pytest.raises(SystemExit) as e:
        sweep.main(["--sweep", str(bad)])
    assert e.value.code == 2 and "metric needs a name and goal" in capsys.readouterr().err


@pytest.mark.slow
def test_agent_run_joins_the_sweeps_wandb_run(tiny_seacat, tmp_path):
    """train.py as a W&B agent starts it (subprocess, agent env): the offline run has the agent's id."""
    from tests.wandb_offline import read_run

    _, _, spec = tiny_seacat
    argv = agent_command({**spec, "program": str(REPO / "train.py")}, {"model.head_lr": 0.01})
    run_dir = tmp_path / "agent_run"
    params = tmp_path / "sweep-params.yaml"
    params.write_text(yaml.safe_dump({"model.head_lr": {"value": 0.01}}))
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SWEEP_ID": "swp123",
        "WANDB_RUN_ID": "agentrun1",
        "WANDB_SWEEP_PARAM_PATH": str(params),
        "WANDB_DIR": str(tmp_path),
        "WANDB_DATA_DIR": str(tmp_path / "d"),
        "WANDB_CACHE_DIR": str(tmp_path / "c"),
        "WANDB_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    env.pop("FEEDBACK_NLP_RUN_DIR", None)
    proc = subprocess.run(
        [sys.executable, *argv, "logger.wandb.enabled=true", f"output_dir={run_dir}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = read_run(run_dir)
    assert run.dir.name.endswith("-agentrun1")
    assert run.summary["test/acc"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["test/acc"])
    logged = {k: v for h in run.history for k, v in h.items()}  # the 002 heatmap went to W&B as well
    assert logged["plots/seacat/attention_heatmap"]["_type"] == "image-file"
    assert (run_dir / "plots" / "attention_heatmap.png").is_file()
    assert run.summary["best/val/acc"] == pytest.approx(
        json.loads((run_dir / "best_metrics.json").read_text())["val/acc"]["value"]
    )


@pytest.mark.parametrize("value", [1e-05, 2.5e-05, 0.5, 3, True, False, None, "original+NN", "true", "1,2"])
def test_local_trial_overrides_read_back_as_the_same_value(value):
    key, _, text = sweep.override("model.x", value).partition("=")
    back = yaml.safe_load(text)
    assert key == "model.x" and back == value and type(back) is type(value)


@pytest.mark.slow
def test_ddp_trial_runs_rank_zeros_parameters_on_both_ranks(tiny_seacat):
    """A real 2-process CPU DDP trial: Lightning re-runs the sweep command for rank 1, which must
    train rank 0's trial instead of asking the study for another one."""
    from tests.scale_helpers import job_env

    tmp, path, _ = tiny_seacat
    out = tmp / "ddp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "feedback_nlp",
            "sweep",
            "--sweep",
            str(path),
            "--trials",
            "1",
            "--out",
            str(out),
            "--pruner",
            "none",
            "trainer.strategy=ddp",
            "trainer.devices=2",
        ],
        cwd=tmp,
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    study = optuna.load_study(study_name="tiny_seacat", storage=f"sqlite:///{out / 'study.db'}")
    (trial,) = study.trials  # rank 1 asked for nothing
    assert trial.state == optuna.trial.TrialState.COMPLETE
    run_dir = out / "trials" / "000"
    assert [p.name for p in (out / "trials").iterdir()] == ["000"]
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert trial.value == pytest.approx(saved["test/acc"])
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["model"]["head_lr"] == trial.params["model.head_lr"] and cfg["trainer"]["devices"] == 2

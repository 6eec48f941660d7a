"""compare_runs: local run dirs and W&B runs give the same table (W&B through a stand-in for the
public wandb.Api, since tests have no server; the filters it receives are checked)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from feedback_nlp.scripts import compare_runs

RUNS = {
    "original": {"test/recall": 0.8, "test/precision": 0.5, "traffic/volume_model": 12.0},
    "original+NN": {"test/recall": 0.9, "test/precision": 0.45, "traffic/volume_model": 15.0},
}
BEST = {"original": 0.41, "original+NN": 0.37}


def write_runs(root):
    for name, metrics in RUNS.items():
        d = root / name
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({**metrics, "val/loss": 9.0}))
        (d / "best_metrics.json").write_text(
            json.dumps({"val/loss": {"value": BEST[name], "epoch": 1, "step": 9, "mode": "min"}})
        )


class FakeApi:
    """Answers `runs(path, filters)` like wandb.Api with summaries as finish_wandb/BestMetrics write them."""

    def __init__(self):
        self.calls = []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return [
            SimpleNamespace(
                name=name,
                id=f"id{i}",
                summary={
                    **metrics,
                    "val/loss": {"min": BEST[name]},
                    "best/val/loss": BEST[name],
                    "best/val/loss/epoch": 1,
                    "_runtime": 3.0,
                    "plots/product_safety/pr_curve": {"_type": "image-file"},
                },
            )
            for i, (name, metrics) in enumerate(RUNS.items())
        ]


def test_local_dirs_and_wandb_runs_print_the_same_table(tmp_path, monkeypatch, capsys):
    write_runs(tmp_path / "runs")
    cols = "test/recall,test/precision,traffic/volume_model,best/val/loss"
    local = compare_runs.main(["--runs-under", str(tmp_path / "runs"), "--metrics", cols])
    api = FakeApi()
    real = compare_runs.wandb_runs  # the real W&B reader, handed the stand-in API
    monkeypatch.setattr(compare_runs, "wandb_runs", lambda project, group, tag: real(project, group, tag, api=api))
    remote = compare_runs.main(
        ["--wandb", "me/feedback-nlp", "--group", "ablation", "--tag", "paper", "--metrics", cols]
    )
    assert local == remote
    assert api.calls == [("me/feedback-nlp", {"group": "ablation", "tags": {"$in": ["paper"]}})]
    row = next(line for line in local.splitlines() if line.startswith("| original+NN "))
    assert row == "| original+NN | 0.9000 | 0.4500 | 15.0000 | 0.3700 |"  # best/val/loss, not the last 9.0


def test_reference_by_run_name_gives_relative_percentages(tmp_path, capsys):
    write_runs(tmp_path / "runs")
    table = compare_runs.main(
        [
            "--runs-under",
            str(tmp_path / "runs"),
            "--reference",
            "original",
            "--metrics",
            "test/recall,traffic/volume_model",
            "--out",
            str(tmp_path / "t.md"),
        ]
    )
    row = next(line for line in table.splitlines() if line.startswith("| original+NN "))
    assert "+12.5%" in row and "+25.0%" in row  # (0.9-0.8)/0.8, (15-12)/12 by hand
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["relative_percent"]["original+NN"]["test/recall"] == pytest.approx(12.5)


def test_unreadable_sources_are_one_clear_error(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text('{"test/recall": 0.5,\n oops}')
    with pytest.raises(SystemExit) as e:
        compare_runs.main(["--run", f"bad={tmp_path / 'bad'}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{tmp_path / 'bad' / 'metrics.json'}:2: invalid JSON" in err
    with pytest.raises(SystemExit):
        compare_runs.main(["--wandb", "me/p"])
    assert "--group and/or --tag" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare_runs.main(["--runs-under", str(tmp_path / "empty")])
    assert "no run directory" in capsys.readouterr().err

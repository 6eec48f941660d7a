"""train.py: resolved config saved, run dir layout, and bad input stops before anything is written."""

from __future__ import annotations

import json

import pytest

from feedback_nlp.cli import train
from tests.scale_helpers import REPO
from tests.tiny_models import tiny_seacat_run

CONFIG = str(REPO / "configs/experiment/seacat_demo.yaml")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("entry")
    data, overrides = tiny_seacat_run(tmp, 60, 9)
    return tmp, data, overrides


def snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_smoke_run_then_bad_input_leaves_earlier_runs_untouched(assets, capsys):
    tmp, data, base = assets
    root = tmp / "outputs"
    got = train.main(["--config", CONFIG, *base, f"output_root={root}"])
    (run_dir,) = list((root / "seacat_demo").iterdir())
    assert {"config.yaml", "metrics.json", "checkpoints", "predictions.jsonl", "csv"} <= {
        p.name for p in run_dir.iterdir()
    }
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == pytest.approx(got) and "test/acc" in saved and all(isinstance(v, float) for v in saved.values())
    assert "max_tokens: 12" in (run_dir / "config.yaml").read_text()  # the resolved config, overrides applied
    assert "# resolved config" in capsys.readouterr().out

    before = snapshot(root)
    bad = tmp / "bad.jsonl"
    lines = data.read_text().splitlines()
    lines[3] = lines[3].replace('"speaker": "agent"', '"speaker": "robot"', 1)
    bad.write_text("\n".join(lines) + "\n{broken\n")
    with pytest.raises(SystemExit) as e:
        train.main(["--config", CONFIG, *base, f"data.path={bad}", f"output_root={root}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}:4: field 'turns[" in err and "unknown speaker 'robot'" in err
    assert f"{bad}:{len(lines) + 1}: field '<line>': invalid JSON" in err and "2 problem(s)" in err
    assert snapshot(root) == before  # no new run dir, nothing earlier touched

    # a wrong model value, or a hub model that is not cached offline, also stops before any write
    for override, message in (
        ("model.dropout=high", "'model.dropout' expects float, got str"),
        ("model.pretrained=no-such-org/no-such-model", "not in the local Hugging Face cache"),
    ):
        with pytest.raises(SystemExit) as e:
            train.main(["--config", CONFIG, *base, override, f"output_root={root}"])
        assert e.value.code == 2 and message in capsys.readouterr().err, override
        assert snapshot(root) == before, override


def test_unknown_override_exits_with_suggestion(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--config", CONFIG, "trainer.max_epoch=3"])
    assert e.value.code == 2
    assert "did you mean 'trainer.max_epochs'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--config", CONFIG, "model.max_tokenz=3"])
    assert "did you mean 'model.max_tokens'" in capsys.readouterr().err

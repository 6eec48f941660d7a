"""Logger settings never fail a job late: a missing W&B login stops before any data or model
work with one message naming the fixes; a disabled progress bar drops the configured one;
every training experiment config carries an early-stopping switch."""

from __future__ import annotations

import lightning as L
import pytest

from feedback_nlp.cli import train
from feedback_nlp.core.config import load_config
from feedback_nlp.training.callbacks_setup import build_callbacks
from tests.scale_helpers import REPO


@pytest.fixture()
def no_login(tmp_path, monkeypatch):
    """An online W&B with no key anywhere: no env key, empty HOME, no netrc, no settings file."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / "wandb"))
    return tmp_path


def test_missing_wandb_login_stops_before_data_and_model(no_login, capsys):
    out = no_login / "outputs"
    # the data file and the model do not exist: reaching either would give another error
    with pytest.raises(SystemExit) as e:
        train.main(
            [
                "--config",
                str(REPO / "configs/experiment/product_safety.yaml"),
                f"output_root={out}",
                f"data.path={no_login / 'missing.jsonl'}",
                "model.pretrained=no-such-org/no-such-model",
            ]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert "no W&B login was found" in err
    for fix in ("logger=csv", "WANDB_MODE=offline", "wandb login"):
        assert fix in err, fix
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_offline_or_disabled_wandb_needs_no_login(no_login, monkeypatch, mode):
    from feedback_nlp.training.logging_setup import check_logger

    monkeypatch.setenv("WANDB_MODE", mode)
    check_logger({"wandb": {"enabled": True}})  # no error
    monkeypatch.delenv("WANDB_MODE")
    check_logger({"wandb": {"enabled": True, "mode": mode}})
    check_logger({"wandb": {"enabled": False}})


def test_disabled_progress_bar_drops_the_configured_one(tmp_path):
    cfg = load_config(REPO / "configs/experiment/seacat_demo.yaml", ["trainer.enable_progress_bar=false"])
    from lightning.pytorch.callbacks import ProgressBar

    with_bar = build_callbacks(cfg.callbacks, tmp_path)
    assert any(isinstance(c, ProgressBar) for c in with_bar)  # the default config has a RichProgressBar
    with pytest.raises(Exception, match="enable_progress_bar"):  # what users hit before
        L.Trainer(enable_progress_bar=False, callbacks=with_bar, logger=False)
    callbacks = build_callbacks(cfg.callbacks, tmp_path, progress_bar=cfg.trainer.enable_progress_bar)
    assert not any(isinstance(c, ProgressBar) for c in callbacks)
    assert len(callbacks) == len(with_bar) - 1
    L.Trainer(enable_progress_bar=False, callbacks=callbacks, logger=False)  # no MisconfigurationException


TRAINED = sorted(p for p in (REPO / "configs/experiment").glob("*.yaml") if "universal_model" not in p.name)


@pytest.mark.parametrize("path", TRAINED, ids=[p.stem for p in TRAINED])
def test_every_experiment_config_has_an_early_stopping_switch(path, tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping

    cfg = load_config(path, ["callbacks.early_stopping.enabled=true", "callbacks.early_stopping.patience=7"])
    stops = [c for c in build_callbacks(cfg.callbacks, tmp_path) if isinstance(c, EarlyStopping)]
    # the multi-level demos stop on the task's own dev metric (issue 26), the rest on the dev loss
    own = path.stem in ("multilevel_issues_demo", "multilevel_issues_cpsc")
    assert len(stops) == 1 and stops[0].patience == 7
    assert stops[0].monitor == ("val/selection_score" if own else "val/loss")
    off = load_config(path, ["callbacks.early_stopping.enabled=false"])
    assert not any(isinstance(c, EarlyStopping) for c in build_callbacks(off.callbacks, tmp_path))
    if path.stem.startswith("multilevel_issues") or path.stem.startswith("product_safety"):
        assert load_config(path).callbacks.early_stopping.enabled is True  # on by default there


def test_universal_model_with_wandb_but_no_login_stops_before_reading_data(no_login, capsys):
    from feedback_nlp.cli.repo import main

    out = no_login / "um"
    with pytest.raises(SystemExit) as e:
        main(
            [
                "evaluate",
                "--config",
                str(REPO / "configs/experiment/universal_model_demo.yaml"),
                "logger=wandb",
                f"repository.path={no_login / 'missing.jsonl'}",
                f"output_dir={out}",
            ]
        )
    assert e.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "no W&B login" in err and "logger=csv" in err and "missing.jsonl" not in err


def test_sync_lineage_names_what_is_missing(no_login, capsys):
    from feedback_nlp.scripts import sync_lineage

    assert sync_lineage.main([str(no_login)]) == 2
    assert f"{no_login}: no offline W&B run" in capsys.readouterr().err
    run = no_login / "run"
    (run / "wandb" / "offline-run-20260101_000000-abc").mkdir(parents=True)
    (run / "wandb_run_id.txt").write_text("abc\n")
    assert sync_lineage.main([str(run)]) == 2  # an offline run, but nobody logged in: nothing synced
    assert "no W&B login" in capsys.readouterr().err
    assert sync_lineage.run_wandb_settings(run) == {}  # no config.yaml: the defaults
    (run / "config.yaml").write_text("logger:\n  wandb:\n    project: ablations\n    entity: team\n")
    assert sync_lineage.run_wandb_settings(run) == {"project": "ablations", "entity": "team"}


@pytest.mark.skipif(not __import__("os").environ.get("WANDB_API_KEY"), reason="needs a W&B server: set WANDB_API_KEY")
def test_sync_lineage_declares_offline_datasets_as_inputs(tmp_path, monkeypatch):
    """Online contract: an offline run's dataset artifacts become the synced run's inputs."""
    import wandb

    from feedback_nlp.scripts import sync_lineage
    from feedback_nlp.training.lineage import log_datasets
    from feedback_nlp.training.logging_setup import wandb_run_id

    data = tmp_path / "train.jsonl"
    data.write_text('{"id": "1", "text": "a"}\n')
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run = wandb.init(dir=str(run_dir), id=wandb_run_id(run_dir), project="feedback-nlp-tests", mode="offline")
    refs = log_datasets(run, {"train_path": str(data)})
    run.finish()
    (run_dir / "config.yaml").write_text("logger:\n  wandb:\n    project: feedback-nlp-tests\n")
    assert sync_lineage.main([str(run_dir)]) == 0  # the project comes from the run's config.yaml
    api = wandb.Api()
    synced = api.run(f"{api.default_entity}/feedback-nlp-tests/{wandb_run_id(run_dir)}")
    used = {f"{a.name.split(':')[0]}:{alias}" for a in synced.used_artifacts() for alias in a.aliases}
    assert set(refs) <= used

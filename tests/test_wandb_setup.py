"""Logger settings never fail a job late: a missing W&B login stops before any data or model
work with one message naming the fixes; a disabled progress bar drops the configured one;
every training experiment config carries an early-stopping switch."""

from __future__ import annotations

import lightning as L
import pytest

from feedback_nlp import train
from feedback_nlp.common.callbacks_setup import build_callbacks
from feedback_nlp.common.config import load_config
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
    from feedback_nlp.common.logging_setup import check_logger

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
    assert len(stops) == 1 and stops[0].patience == 7 and stops[0].monitor == "val/loss"
    off = load_config(path, ["callbacks.early_stopping.enabled=false"])
    assert not any(isinstance(c, EarlyStopping) for c in build_callbacks(off.callbacks, tmp_path))
    if path.stem.startswith("multilevel_issues") or path.stem.startswith("product_safety"):
        assert load_config(path).callbacks.early_stopping.enabled is True  # on by default there

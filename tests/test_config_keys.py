"""Settings document themselves: every parameter a config can set has a type, a default and a
one-line description in one place (signature + the `Args:` block of its class), and
`feedback-nlp train --config X --list-keys` prints them for the config's sections.

Why a test over all configs: a new setting added without a description (or a new class_path in
a config whose class documents nothing) fails here, not in a user's terminal.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from feedback_nlp.core.config import IMPLICIT_CLASSES
from feedback_nlp.core.signature import REQUIRED, param_descriptions, settings

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
EXPERIMENT = CONFIGS / "experiment" / "product_safety_demo.yaml"

# settings that do not come from a class_path: the serving predictors' runtime and request limits
SERVING_SETTINGS = ("feedback_nlp.serving.runtime.RuntimeOptions", "feedback_nlp.core.records.Limits")


def load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def configured_classes() -> dict[str, Any]:
    """Every class a config names by class_path (commented examples included: users copy them),
    the Trainer, the dataclass-documented sections of those classes, and the serving settings."""
    paths = {m.group(1) for f in CONFIGS.rglob("*.yaml") for m in re.finditer(r"class_path:\s*([\w.]+)", f.read_text())}
    paths |= set(IMPLICIT_CLASSES.values()) | set(SERVING_SETTINGS)
    classes = {p: load(p) for p in sorted(paths)}
    for cls in list(classes.values()):
        for section in (getattr(cls, "setting_sections", None) or {}).values():
            classes[f"{section.__module__}.{section.__qualname__}"] = section
    return classes


def undocumented(cls: Any) -> list[str]:
    """`Class.param` for each accepted parameter without a description."""
    return [f"{s.owner}.{s.name}" for s in settings(cls) if not s.description]


def test_configs_name_the_classes_this_test_expects() -> None:
    """The collection is not empty by accident (a moved configs/ folder would make the next test pass)."""
    names = {p.rsplit(".", 1)[1] for p in configured_classes()}
    for expected in ("ProductSafetyDataModule", "NoisyNegatives", "ParallelCorpus", "HFTranslator", "SeaCat",
                     "MultiLevelIssuesModule", "McmlBertModule", "OptimSettings", "RecallThreshold", "Trainer",
                     "RuntimeOptions", "EarlyStopping"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", sorted(configured_classes()))
def test_every_configured_setting_has_a_description(path: str) -> None:
    cls = configured_classes()[path]
    assert undocumented(cls) == [], f"{path}: document these in its `Args:` block (one line each)"
    if path.startswith("feedback_nlp."):  # ours: a type for every setting too (Lightning's have theirs)
        untyped = [s.name for s in settings(cls) if not s.type]
        assert untyped == [], f"{path}: annotate {untyped}"
        for s in settings(cls):
            assert "\n" not in s.description and len(s.description) <= 160, f"{path}.{s.name}: one line, please"


class _Base:
    """A base whose settings subclasses take as **base.

    Args:
        shared: A documented base setting.
    """

    def __init__(self, shared: int = 1, hidden: int = 2):
        self.shared, self.hidden = shared, hidden


class _Child(_Base):
    """A subclass.

    Args:
        own: A documented own setting.
    """

    default_overrides = {"shared": 5}

    def __init__(self, own: str = "x", forgotten: float = 0.5, **base: Any):
        super().__init__(**base)


def test_the_check_finds_an_undocumented_setting_in_a_class_and_in_its_base() -> None:
    assert undocumented(_Child) == ["_Child.forgotten", "_Base.hidden"]
    rows = {s.name: s for s in settings(_Child)}
    assert (rows["own"].type, rows["own"].default, rows["own"].description) == ("str", "x", "A documented own setting.")
    assert (rows["shared"].default, rows["shared"].description) == (5, "A documented base setting.")  # base's doc
    assert param_descriptions(_Base) == {"shared": "A documented base setting."}


def test_a_required_setting_has_no_default() -> None:
    from feedback_nlp.callbacks.serving_export import ServingExport

    run_dir = next(s for s in settings(ServingExport) if s.name == "run_dir")
    assert run_dir.default is REQUIRED and run_dir.description.startswith("The run directory")


# --- feedback-nlp train --config X --list-keys --------------------------------------------------
def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def list_keys(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, list[str]]:
    from feedback_nlp.cli.train import main

    assert main(["--config", str(EXPERIMENT), "--list-keys", *extra]) == {}
    out = capsys.readouterr().out
    return {columns(line)[0]: columns(line) for line in out.splitlines() if line.startswith("  ")}


@pytest.fixture
def nothing_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """--list-keys reads signatures only: building a model or a DataModule, loading weights or
    reading data fails the test."""
    import lightning as L

    from feedback_nlp.core import model_factory
    from feedback_nlp.datamodules.base import RecordDataModule

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("--list-keys must not load models or data")

    for name in ("load_encoder", "load_tokenizer", "load_model", "load_sentence_transformer", "load_hf_config"):
        monkeypatch.setattr(model_factory, name, refuse)
    monkeypatch.setattr(model_factory, "resolve_name_or_path", refuse)
    # every task DataModule / LightningModule calls these first (our own __init__s are what is read)
    for cls in (L.LightningDataModule, L.LightningModule):
        monkeypatch.setattr(cls, "__init__", refuse)
    monkeypatch.setattr(RecordDataModule, "validate", refuse)
    monkeypatch.setattr(RecordDataModule, "load", refuse)


def test_list_keys_prints_key_type_default_value_and_description(
    capsys: pytest.CaptureFixture[str], nothing_loads: None
) -> None:
    rows = list_keys(capsys)
    # a key the experiment leaves at its default: no config value
    assert rows["data.noisy_negatives.beta"] == [
        "data.noisy_negatives.beta",
        "float",
        "0.5",
        "Ball radius as a share of each positive's distance to its nearest labeled negative, in (0, 1].",
    ]
    # a key the experiment sets (product_safety_demo.yaml: data.batch_size: 16): the config's value too
    assert rows["data.batch_size"] == [
        "data.batch_size",
        "int",
        "32",
        "16",
        "Global training batch (each of N DDP ranks gets batch_size // N).",
    ]
    # the task's own optimizer defaults (product safety: adam, lr 3e-6), the experiment's lr
    assert rows["model.optim.lr"][:4] == ["model.optim.lr", "float", "3e-06", "0.0002"]
    assert rows["model.optim.optimizer"][:3] == ["model.optim.optimizer", "str", "adam"]
    # a callback, a nested class_path section, Lightning's Trainer, a required key
    assert rows["callbacks.recall_threshold.target_recall"][1:3] == ["float", "0.95"]
    assert rows["data.parallel_corpus.translate_test"][1:3] == ["bool", "false"]
    assert rows["trainer.max_epochs"][1:2] == ["Optional[int]"]
    assert rows["trainer.max_epochs"][-1].startswith("Stop training once this number of epochs is reached")
    assert rows["callbacks.serving_export.run_dir"][2] == "required"


def test_list_keys_shows_overrides_and_keeps_the_checker_errors(
    capsys: pytest.CaptureFixture[str], nothing_loads: None
) -> None:
    rows = list_keys(capsys, "data.batch_size=7", "model.optim.warmup_steps=3")
    assert rows["data.batch_size"][3] == "7"
    assert rows["model.optim.warmup_steps"][:4] == ["model.optim.warmup_steps", "int", "0", "3"]
    from feedback_nlp.cli.train import main

    with pytest.raises(SystemExit) as stop:
        main(["--config", str(EXPERIMENT), "--list-keys", "data.batch_sise=7"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown config key 'data.batch_sise'" in err and "did you mean 'data.batch_size'" in err


def test_train_help_names_list_keys(capsys: pytest.CaptureFixture[str]) -> None:
    from feedback_nlp.cli.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    assert "--list-keys" in capsys.readouterr().out

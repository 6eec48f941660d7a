"""Config composition, dotted overrides, unknown-key and wrong-type errors."""

from pathlib import Path

import pytest

from feedback_nlp.core.config import ConfigError, load_config
from feedback_nlp.core.instantiate import instantiate

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "configs/experiment/multilevel_issues_demo.yaml"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "trainer").mkdir()
    (tmp_path / "base.yaml").write_text("experiment: null\nseed: 0\noutput_dir: null\n")
    (tmp_path / "trainer" / "default.yaml").write_text("max_epochs: 3\nprecision: 32-true\nlimit_train_batches: null\n")
    (tmp_path / "exp.yaml").write_text(
        "defaults: [trainer/default]\n"
        "trainer: {max_epochs: 5}\n"
        "data: {class_path: datetime.timedelta, days: 1, seconds: 0}\n"
        "lr: 0.001\n"
    )
    return tmp_path


def test_composition_and_precedence(root):
    cfg = load_config(root / "exp.yaml", [], root=root)
    assert cfg.experiment == "exp" and cfg.trainer.max_epochs == 5 and cfg.trainer.precision == "32-true"
    cfg = load_config(
        root / "exp.yaml",
        ["trainer.max_epochs=7", "lr=1", "+trainer.devices=2", "trainer.limit_train_batches=0.5"],
        root=root,
    )
    assert cfg.trainer.max_epochs == 7 and cfg.trainer.devices == 2 and cfg.trainer.limit_train_batches == 0.5
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)  # int accepted for a float key


def test_unknown_key_names_closest(root):
    with pytest.raises(ConfigError, match=r"unknown config key 'trainer.max_epoch'; did you mean 'trainer.max_epochs'"):
        load_config(root / "exp.yaml", ["trainer.max_epoch=3"], root=root)


def test_constructor_parameters_are_known_keys_without_a_plus(root):
    """A class_path section's constructor parameters (here logging.Formatter's; for `trainer`,
    Lightning's Trainer) are valid overrides although the YAML does not list them; a misspelt one
    still fails with a hint."""
    (root / "fmt.yaml").write_text("defaults: [trainer/default]\nfmt: {class_path: logging.Formatter}\n")
    cfg = load_config(root / "fmt.yaml", ["fmt.datefmt=%H", "trainer.check_val_every_n_epoch=2"], root=root)
    assert cfg.fmt.datefmt == "%H" and cfg.trainer.check_val_every_n_epoch == 2
    with pytest.raises(ConfigError, match=r"unknown config key 'fmt.datefnt'; did you mean 'fmt.datefmt'"):
        load_config(root / "fmt.yaml", ["fmt.datefnt=%H"], root=root)
    with pytest.raises(ConfigError, match=r"did you mean 'trainer.check_val_every_n_epoch'"):
        load_config(root / "fmt.yaml", ["trainer.chek_val_every_n_epoch=2"], root=root)


def test_mapping_parameter_takes_new_entries():
    """The documented held-out override: rename source fields with data.field_map, entry by entry."""
    cfg = load_config(DEMO, ["data.field_map={text: review_body}", "data.field_map.summary=abstract"])
    assert dict(cfg.data.field_map) == {"text": "review_body", "summary": "abstract"}
    with pytest.raises(ConfigError, match="unknown config key 'data.path.x'"):  # not a mapping parameter
        load_config(DEMO, ["data.path.x=1"])


@pytest.mark.parametrize(
    "override,msg",
    [
        ("trainer.max_epochs=abc", "'trainer.max_epochs' expects int, got str"),
        ("trainer.max_epochs=1.5", "'trainer.max_epochs' expects int, got float"),
        ("trainer=3", "is a section"),
    ],
)
def test_wrong_type_names_key_and_type(root, override, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
        load_config(root / "exp.yaml", [override], root=root)


def test_instantiate_checks_constructor_keys(monkeypatch):
    class Model:
        def __init__(self, lr: float = 1e-3, layers: int = 2, name: str = "m", cache: int | None = None):
            self.lr, self.layers = lr, layers

    import sys
    import types

    mod = types.ModuleType("fake_models")
    mod.Model = Model
    monkeypatch.setitem(sys.modules, "fake_models", mod)  # removed again after the test
    assert instantiate({"class_path": "fake_models.Model", "lr": 0.1}, "model").lr == 0.1
    with pytest.raises(ConfigError, match=r"unknown config key 'model.layer' for Model; did you mean 'model.layers'"):
        instantiate({"class_path": "fake_models.Model", "layer": 3}, "model")
    with pytest.raises(ConfigError, match=r"'model.layers' expects int, got str"):
        instantiate({"class_path": "fake_models.Model", "layers": "three"}, "model")
    # an Optional primitive is checked too (it used to count as a "complex" annotation)
    assert instantiate({"class_path": "fake_models.Model", "cache": None}, "model").lr == 1e-3
    with pytest.raises(ConfigError, match=r"'model.cache' expects int or null, got dict"):
        instantiate({"class_path": "fake_models.Model", "cache": {"x": 1}}, "model")
    # extras the class does not take (e.g. task_info from data) are dropped, not errors
    assert instantiate({"class_path": "fake_models.Model"}, "model", labels=["a"]).layers == 2


def test_repo_experiments_compose():
    from feedback_nlp.core.instantiate import import_object

    paths = sorted((ROOT / "configs/experiment").glob("*.yaml"))
    assert paths
    for path in paths:
        cfg = load_config(path, [])
        assert cfg.experiment
        for section in ("model", "data"):
            if "class_path" in (cfg.get(section) or {}):
                import_object(cfg[section].class_path)  # every wired class exists


def test_pieces_carry_defaults_and_groups_are_selected_on_the_command_line(root):
    """A piece states only what differs from the piece it names in `defaults`; `group=option`
    swaps the selection; an unknown option names the available ones."""
    (root / "trainer" / "gpu.yaml").write_text("defaults: [default]\nprecision: bf16-mixed\ndevices: 8\n")
    (root / "trainer" / "nodes.yaml").write_text("defaults: [gpu]\nnum_nodes: 2\n")
    cfg = load_config(root / "exp.yaml", ["trainer=nodes"], root=root)
    assert dict(cfg.trainer) == {
        "max_epochs": 5,
        "precision": "bf16-mixed",
        "limit_train_batches": None,
        "devices": 8,
        "num_nodes": 2,
    }  # max_epochs: the experiment's own key wins
    cfg = load_config(root / "exp.yaml", ["trainer=gpu", "trainer.devices=4"], root=root)
    assert cfg.trainer.devices == 4 and "num_nodes" not in cfg.trainer
    with pytest.raises(
        ConfigError, match=r"config group 'trainer' has no option 'gpux' \(available: default, gpu, nodes\)"
    ):
        load_config(root / "exp.yaml", ["trainer=gpux"], root=root)
    (root / "trainer" / "loop.yaml").write_text("defaults: [loop2]\n")
    (root / "trainer" / "loop2.yaml").write_text("defaults: [loop]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(root / "exp.yaml", ["trainer=loop"], root=root)


def test_an_experiment_extends_another(root):
    """The child keeps the parent's selections and keys unless it overrides them, and is named
    after its own file."""
    (root / "trainer" / "gpu.yaml").write_text("defaults: [default]\nprecision: bf16-mixed\n")
    (root / "child.yaml").write_text("defaults: [experiment/exp, trainer/gpu]\nlr: 0.5\n")
    cfg = load_config(root / "child.yaml", [], root=root)
    assert cfg.experiment == "child" and cfg.lr == 0.5 and cfg.data.days == 1
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.max_epochs == 5


def test_repo_trainer_pieces_select_from_the_command_line():
    from pathlib import Path

    exp = Path(__file__).resolve().parent.parent / "configs/experiment/product_safety_demo.yaml"
    cfg = load_config(exp, ["trainer=gpu_multinode_ddp", "logger=wandb"])
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.precision) == (8, 2, "bf16-mixed")
    assert cfg.trainer.max_epochs == 1  # the experiment's own trainer keys still win
    assert cfg.logger.wandb.enabled is True


def test_nested_sections_build_their_own_objects(tmp_path):
    """data.noisy_negatives / data.parallel_corpus are sections with their own class_path: their
    keys are checked against their own constructor and the owner receives the built objects."""
    from pathlib import Path

    from feedback_nlp.datamodules.noisy_negatives import NoisyNegatives
    from feedback_nlp.datamodules.parallel_corpus import ParallelCorpus

    exp = Path(__file__).resolve().parent.parent / "configs/experiment/product_safety_demo.yaml"
    cfg = load_config(
        exp,
        [
            "data.noisy_negatives.beta=0.3",
            "data.noisy_negatives.max_count=5",
            f"data.noisy_negatives.embedding_cache_dir={tmp_path}",
            "data.parallel_corpus.languages=[de]",
        ],
    )
    dm = instantiate(cfg.data, "data")
    assert isinstance(dm.noisy_negatives, NoisyNegatives) and isinstance(dm.parallel_corpus, ParallelCorpus)
    assert (dm.noisy_negatives.beta, dm.noisy_negatives.max_count, dm.noisy_negatives.pool_max) == (0.3, 5, 300)
    assert dm.parallel_corpus.languages == ["de"] and dm.parallel_corpus.translator is None
    with pytest.raises(
        ConfigError, match=r"unknown config key 'data.noisy_negatives.betta'; did you mean 'data.noisy_negatives.beta'"
    ):
        load_config(exp, ["data.noisy_negatives.betta=0.3"])
    cfg = load_config(exp, ["data.noisy_negatives.max_count=many"])
    with pytest.raises(ConfigError, match=r"'data.noisy_negatives.max_count' expects int or null, got str"):
        instantiate(cfg.data, "data")


def test_exponent_floats_from_the_command_line_are_floats(root):
    """A W&B agent passes `lr=1e-05`; YAML 1.1 would read it as the string '1e-05'."""
    cfg = load_config(root / "exp.yaml", ["lr=1e-05", "+eps=2E-3"], root=root)
    assert cfg.lr == 1e-05 and cfg.eps == 0.002
    with pytest.raises(ConfigError, match="'trainer.max_epochs' expects int, got float"):
        load_config(root / "exp.yaml", ["trainer.max_epochs=1e3"], root=root)


def test_subclass_settings_taken_as_base_kwargs_are_still_checked():
    """The DataModules take the shared settings as **base: keys, types and overrides of the base's
    parameters are checked as if each subclass listed them."""
    from feedback_nlp.core.instantiate import check_kwargs
    from feedback_nlp.core.signature import constructor_params
    from feedback_nlp.datamodules.base import RecordDataModule
    from feedback_nlp.datamodules.product_safety import ProductSafetyDataModule
    from feedback_nlp.datamodules.seacat import SeaCatDataModule

    params, open_ended = constructor_params(SeaCatDataModule)
    base, _ = constructor_params(RecordDataModule)
    assert not open_ended and set(base) < set(params) and "dedupe_sentences" in params and "max_sentences" not in params
    with pytest.raises(ConfigError, match=r"unknown config key 'data.batch_sise'.*did you mean 'data.batch_size'"):
        check_kwargs(ProductSafetyDataModule, {"batch_sise": 8}, "data")
    with pytest.raises(ConfigError, match=r"'data.dev_fraction' expects float, got str"):
        check_kwargs(SeaCatDataModule, {"dev_fraction": "a tenth"}, "data")
    check_kwargs(ProductSafetyDataModule, {"seed": 3, "variant": "original"}, "data")  # base and own keys pass
    assert SeaCatDataModule().batch_size == 16 and SeaCatDataModule(batch_size=4).batch_size == 4
    cfg = load_config(str(ROOT / "configs/experiment/seacat_demo.yaml"), ["data.test_fraction=0.3"])
    assert cfg.data.test_fraction == 0.3  # a base parameter, overridden without '+'


def test_constructor_params_of_functions_plain_classes_and_open_chains():
    from feedback_nlp.core.signature import constructor_params

    def build(a: int, b: str = "x", **rest):
        return a, b, rest

    class Plain:
        pass

    class Open:
        def __init__(self, a: int = 1, **anything):
            self.a = a

    class Child(Open):
        def __init__(self, c: int = 2, **base):
            super().__init__(**base)

    params, open_ended = constructor_params(build)
    assert list(params) == ["a", "b"] and open_ended
    assert constructor_params(Plain) == ({}, False)
    params, open_ended = constructor_params(Child)
    assert list(params) == ["c", "a"] and open_ended  # Open's **anything takes any key
    assert params["a"][1] is Open.__init__  # annotations are read from the declaring __init__


class _Picky:
    def __init__(self, variant: str = "a", size: int = 1):
        if variant not in ("a", "b"):
            raise ValueError(f"unknown variant {variant!r}")
        if size > 10:
            raise TypeError("too big")


def test_a_value_the_constructor_refuses_is_a_config_error_naming_the_key():
    from feedback_nlp.core.instantiate import instantiate

    with pytest.raises(ConfigError, match=r"^data\.variant: unknown variant 'original\+XX'$"):
        instantiate({"class_path": f"{__name__}._Picky", "variant": "original+XX"}, "data")
    with pytest.raises(ConfigError, match=r"^data: too big$"):  # no key named: the section
        instantiate({"class_path": f"{__name__}._Picky", "size": 11}, "data")

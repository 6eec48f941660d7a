"""Experiment configs: omegaconf YAML composed from shared pieces, plus dotted CLI overrides.

Why: one file per experiment answers "what exactly did this run use", while trainer, logger
and callback pieces stay shared. Overrides are checked against the composed config so a typo
(`trainer.max_epoch=3`) fails at once with the closest valid key instead of being ignored.

Composition (Hydra's defaults-list model, without Hydra's run-dir handling, which fights DDP):
an experiment YAML lists `defaults: [trainer/default, logger/csv, ...]`; each entry `group/name`
selects `configs/group/name.yaml`, loaded under the key `group`. A piece may list its own
`defaults` (names of pieces of the same group, merged first), so `trainer/gpu_8x_ddp` states only
what differs from `trainer/default`. An experiment may extend another with the entry
`experiment/<name>`: the parent's selections and keys come first, the child's override them.
On the command line `group=option` changes a selection (`trainer=gpu_8x_ddp logger=wandb`).
Order: `configs/base.yaml`, the selected pieces, the experiment chain's own keys, then dotted
CLI overrides, each merged over the last. A CLI key that starts with `+` may add a new key.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, cast

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from feedback_nlp.core.errors import UserError
from feedback_nlp.core.signature import constructor_params

# the repository's configs/ (feedback_nlp/core/config.py -> repo root); a user's own config tree
# elsewhere is found from the experiment file (config_root)
CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"


def config_root(path: Path) -> Path:
    """The configs folder an experiment file belongs to: its nearest ancestor holding base.yaml
    (so a config tree outside this repository composes the same way), else the repository's."""
    for folder in Path(path).resolve().parents:
        if (folder / "base.yaml").is_file():
            return folder
    return CONFIG_ROOT if (CONFIG_ROOT / "base.yaml").is_file() else Path(path).parent


class ConfigError(UserError, ValueError):
    """A config file or override that cannot be used; the message names the key."""


def merge(*configs: DictConfig | Mapping[str, Any]) -> DictConfig:
    """`OmegaConf.merge` of mappings, typed as what it returns for them: a DictConfig."""
    merged = OmegaConf.merge(*configs)
    if not isinstance(merged, DictConfig):  # pragma: no cover - merging mappings gives a mapping
        raise TypeError(f"merging config mappings gave a {type(merged).__name__}")
    return merged


def to_dict(section: DictConfig | ListConfig | Mapping[str, Any], resolve: bool = True) -> dict[str, Any]:
    """A config section as a plain dict (a copy; interpolations resolved unless `resolve=False`).

    Why: `OmegaConf.to_container` is typed for any node (list, str, None); a section that holds
    keyword arguments or a run's config is a mapping with string keys, and callers want that type.
    """
    if isinstance(section, (DictConfig, ListConfig)):
        data = OmegaConf.to_container(section, resolve=resolve)
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping, got a {type(data).__name__}")
        return cast(dict[str, Any], data)  # a YAML mapping of settings: its keys are names (str)
    return dict(section)


def _load_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml errors carry line numbers
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return cfg


def _defaults(cfg: DictConfig, path: Path) -> list[str]:
    entries = cfg.pop("defaults", [])
    if not isinstance(entries, (list, ListConfig)):
        raise ConfigError(f"{path}: 'defaults' must be a list of group/name entries")
    return [str(e) for e in entries]


def _load_piece(root: Path, group: str, name: str, chain: tuple[str, ...] = ()) -> DictConfig:
    """A group's piece with its own `defaults` (pieces of the same group) merged under it."""
    path = root / group / f"{name}.yaml"
    if f"{group}/{name}" in chain:
        raise ConfigError(f"{path}: defaults form a cycle: {' -> '.join((*chain, f'{group}/{name}'))}")
    if not path.is_file():
        options = sorted(p.stem for p in (root / group).glob("*.yaml")) if (root / group).is_dir() else []
        raise ConfigError(
            f"config group '{group}' has no option '{name}'"
            + (f" (available: {', '.join(options)})" if options else f" (no folder {root / group})")
        )
    own = _load_yaml(path)
    merged = OmegaConf.create({})
    for entry in _defaults(own, path):
        parent = entry.split("/", 1)[1] if entry.startswith(f"{group}/") else entry
        if "/" in parent:
            raise ConfigError(f"{path}: a {group} piece's defaults name {group} pieces, got {entry!r}")
        merged = merge(merged, _load_piece(root, group, parent, (*chain, f"{group}/{name}")))
    return merge(merged, own)


def _experiment_chain(path: Path, root: Path, chain: tuple[Path, ...] = ()) -> tuple[dict[str, str], list[DictConfig]]:
    """(group -> selected piece, the experiments' own bodies parent-first) for `path`."""
    if path.resolve() in chain:
        raise ConfigError(f"{path}: experiments extend each other in a cycle")
    own = _load_yaml(path)
    selections: dict[str, str] = {}
    bodies: list[DictConfig] = []
    for entry in _defaults(own, path):
        group, _, name = entry.partition("/")
        if not name:
            raise ConfigError(f"{path}: defaults entry {entry!r} must look like group/name")
        if group == "experiment":
            parent = path.parent / f"{name}.yaml"
            if not parent.is_file():
                parent = root / "experiment" / f"{name}.yaml"
            sel, parent_bodies = _experiment_chain(parent, root, (*chain, path.resolve()))
            selections.update(sel)
            bodies.extend(parent_bodies)
        else:
            selections[group] = name
    bodies.append(own)
    return selections, bodies


def _compose(path: Path, root: Path, choices: dict[str, str] | None = None) -> DictConfig:
    selections, bodies = _experiment_chain(path, root)
    selections.update(choices or {})
    merged = _load_yaml(root / "base.yaml") if (root / "base.yaml").is_file() else OmegaConf.create({})
    for group, name in selections.items():
        merged = merge(merged, {group: _load_piece(root, group, name)})
    for body in bodies:
        merged = merge(merged, body)
    if bodies[-1].get("experiment") is None and len(bodies) > 1:
        merged.experiment = None  # a child experiment is named after its own file, not its parent
    return merged


def split_group_choices(overrides: Iterable[str], root: Path) -> tuple[dict[str, str], list[str]]:
    """`group=option` overrides (a config group folder and one of its pieces) apart from key overrides."""
    choices: dict[str, str] = {}
    rest: list[str] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        value = raw.strip()
        is_group = sep and "." not in key and not key.startswith("+") and (root / key).is_dir()
        if (
            is_group
            and value
            and not value.startswith(("{", "["))
            and not value.lstrip("-").isdigit()
            and value not in ("null", "~", "true", "false")
        ):
            _load_piece(root, key, value)  # an unknown option fails here, naming the choices
            choices[key] = value
        else:
            rest.append(item)
    return choices, rest


def all_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted key path in `cfg` (mapping leaves and inner nodes)."""
    out: list[str] = []
    if isinstance(cfg, DictConfig):
        for k in cfg.keys():
            key = prefix + str(k)
            out.append(key)
            out.extend(all_keys(cfg._get_node(k), key + "."))
    return out


def closest(key: str, candidates: Iterable[str]) -> str | None:
    candidates = list(candidates)
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    if match:
        return match[0]
    tail = key.rsplit(".", 1)[-1]
    match = difflib.get_close_matches(tail, [c.rsplit(".", 1)[-1] for c in candidates], n=1, cutoff=0.6)
    return next((c for c in candidates if match and c.rsplit(".", 1)[-1] == match[0]), None)


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (list, ListConfig)):
        return "list"
    if isinstance(value, (dict, DictConfig)):
        return "mapping"
    return type(value).__name__


def check_type(key: str, old: Any, new: Any) -> Any:
    """Return `new` coerced to the type of `old`, or raise ConfigError naming key and type."""
    if old is None or new is None:
        return new
    want, got = type_name(old), type_name(new)
    if want == got:
        return new
    if want == "float" and got == "int":
        return float(new)
    if want == "str" and got in ("int", "float"):
        return str(new)
    raise ConfigError(f"config key '{key}' expects {want}, got {got} {new!r}")


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _parse_override(item: str) -> tuple[str, Any, bool]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value")
    key, raw = item.split("=", 1)
    add = key.startswith("+")
    key = key.lstrip("+").strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-05 (a W&B agent's float) as a string
    return key, value, add


IMPLICIT_CLASSES = {"trainer": "lightning.pytorch.Trainer"}  # sections passed to a class without class_path


def constructor_keys(cfg: DictConfig, key: str) -> tuple[str, list[str]]:
    """(section, dotted parameter keys) of the nearest `class_path` section above `key`.

    Why: an experiment YAML lists only the settings it changes; `data.field_map=...` must still
    be a known key when the configured class takes `field_map`, without a `+`.
    """
    import importlib

    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:depth])
        node = OmegaConf.select(cfg, section, default=None)
        path = node.get("class_path") if isinstance(node, DictConfig) else None
        path = path or IMPLICIT_CLASSES.get(section)
        if not isinstance(path, str):
            continue
        module, _, name = path.rpartition(".")
        try:
            params, _ = constructor_params(getattr(importlib.import_module(module), name))
        except Exception:  # an unimportable class_path is reported when the section is built
            return section, []
        return section, [f"{section}.{p}" for p in params]
    return "", []


def _constructor_param(cfg: DictConfig, key: str, params: list[str], section: str) -> bool:
    """True when `key` is a constructor parameter, or a new entry of a mapping parameter."""
    if not section:
        return False
    param = ".".join(key.split(".")[: section.count(".") + 2])
    if param not in params:
        return False
    current = OmegaConf.select(cfg, param, default=None)
    return param == key or current is None or isinstance(current, DictConfig)


def apply_overrides(cfg: DictConfig, overrides: Iterable[str]) -> DictConfig:
    known = all_keys(cfg)
    for item in overrides:
        key, value, add = _parse_override(item)
        exists = OmegaConf.select(cfg, key, default="__missing__") != "__missing__"
        if not exists and not add:
            section, params = constructor_keys(cfg, key)
            if _constructor_param(cfg, key, params, section):
                OmegaConf.update(cfg, key, value, merge=True, force_add=True)
                continue
            hint = closest(key, known + params)
            raise ConfigError(
                f"unknown config key '{key}'"
                + (f"; did you mean '{hint}'?" if hint else "")
                + " (prefix with + to add a new key)"
            )
        old = OmegaConf.select(cfg, key) if exists else None
        if isinstance(old, DictConfig) and not isinstance(value, dict) and value is not None:
            raise ConfigError(f"config key '{key}' is a section; set one of its keys (or null to drop it)")
        OmegaConf.update(cfg, key, check_type(key, old, value), merge=True, force_add=True)
    return cfg


def load_config(path: str | Path, overrides: Iterable[str] = (), root: Path | None = None) -> DictConfig:
    """Compose the experiment at `path`, apply overrides and resolve interpolations."""
    path = Path(path)
    root = root or config_root(path)
    choices, key_overrides = split_group_choices(overrides, root)
    cfg = apply_overrides(_compose(path, root, choices), key_overrides)
    try:
        OmegaConf.resolve(cfg)
    except Exception as e:
        raise ConfigError(f"cannot resolve interpolation in {path}: {e}") from e
    if not cfg.get("experiment"):
        cfg.experiment = path.stem
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)

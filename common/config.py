"""Experiment configs: omegaconf YAML composed from shared pieces, plus dotted CLI overrides.

Why: one file per experiment answers "what exactly did this run use", while trainer, logger
and callback pieces stay shared. Overrides are checked against the composed config so a typo
(`trainer.max_epoch=3`) fails at once with the closest valid key instead of being ignored.

Composition: an experiment YAML may list `defaults: [trainer/default, logger/csv, ...]`; each
entry `group/name` loads `configs/group/name.yaml` under the key `group`. `configs/base.yaml`
is always first. Then the experiment's own keys, then CLI overrides, each merged over the last.
A CLI key that starts with `+` may add a key that does not exist yet.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


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


def _compose(path: Path, root: Path) -> DictConfig:
    own = _load_yaml(path)
    defaults = own.pop("defaults", [])
    if not isinstance(defaults, (list, ListConfig)):
        raise ConfigError(f"{path}: 'defaults' must be a list of group/name entries")
    merged = _load_yaml(root / "base.yaml") if (root / "base.yaml").is_file() else OmegaConf.create({})
    for entry in defaults:
        group, _, name = str(entry).partition("/")
        if not name:
            raise ConfigError(f"{path}: defaults entry {entry!r} must look like group/name")
        piece = _load_yaml(root / group / f"{name}.yaml")
        merged = OmegaConf.merge(merged, {group: piece})
    return OmegaConf.merge(merged, own)


def all_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted key path in `cfg` (mapping leaves and inner nodes)."""
    out: list[str] = []
    if isinstance(cfg, DictConfig):
        for k in cfg.keys():
            key = f"{prefix}{k}"
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
    return key, value, add


IMPLICIT_CLASSES = {"trainer": "lightning.pytorch.Trainer"}  # sections passed to a class without class_path


def constructor_keys(cfg: DictConfig, key: str) -> tuple[str, list[str]]:
    """(section, dotted parameter keys) of the nearest `class_path` section above `key`.

    Why: an experiment YAML lists only the settings it changes; `data.field_map=...` must still
    be a known key when the configured class takes `field_map`, without a `+`.
    """
    import importlib
    import inspect

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
            params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
        except Exception:  # an unimportable class_path is reported when the section is built
            return section, []
        return section, [f"{section}.{p}" for p in params if p != "self"]
    return "", []


def _constructor_param(cfg: DictConfig, key: str, params: list[str], section: str) -> bool:
    """True when `key` is a constructor parameter, or a new entry of a mapping parameter."""
    if not section:
        return False
    param = ".".join(key.split(".")[:section.count(".") + 2])
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
            raise ConfigError(f"unknown config key '{key}'" + (f"; did you mean '{hint}'?" if hint else "")
                              + " (prefix with + to add a new key)")
        old = OmegaConf.select(cfg, key) if exists else None
        if isinstance(old, DictConfig) and not isinstance(value, dict) and value is not None:
            raise ConfigError(f"config key '{key}' is a section; set one of its keys (or null to drop it)")
        OmegaConf.update(cfg, key, check_type(key, old, value), merge=True, force_add=True)
    return cfg


def load_config(path: str | Path, overrides: Iterable[str] = (), root: Path | None = None) -> DictConfig:
    """Compose the experiment at `path`, apply overrides and resolve interpolations."""
    path = Path(path)
    root = root or (CONFIG_ROOT if (CONFIG_ROOT / "base.yaml").is_file() else path.parent)
    cfg = apply_overrides(_compose(path, root), overrides)
    try:
        OmegaConf.resolve(cfg)
    except Exception as e:
        raise ConfigError(f"cannot resolve interpolation in {path}: {e}") from e
    if not cfg.get("experiment"):
        cfg.experiment = path.stem
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)

"""`feedback-nlp train --config X --list-keys`: every key the composed config can set, per section.

Why: an experiment YAML lists only what it changes, so the keys a user may override (and what
they mean) were only found by reading constructors. Each configured class documents its
settings once (signature: type and default; `Args:` block: description, see core/signature.py);
this prints them for the sections this config builds -- data, model (and its `optim` section),
each callback, nested `class_path` sections such as data.noisy_negatives, and the Trainer --
with the config's value where it differs from the default. It imports the configured classes
to read their signatures and builds nothing: no weights, no data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from feedback_nlp.core.config import IMPLICIT_CLASSES, all_keys, type_name
from feedback_nlp.core.instantiate import import_object
from feedback_nlp.core.signature import REQUIRED, Setting, settings

UNSET = object()  # a key the config does not set
HIDDEN = ("class_path", "enabled")  # section keys that select or switch, not settings


@dataclass(frozen=True)
class Row:
    key: str  # dotted, as an override spells it
    type: str
    default: str
    value: str  # the config's value where it differs from the default, else ""
    description: str


@dataclass(frozen=True)
class Section:
    key: str
    source: str  # the class whose settings these are
    rows: list[Row]


def show(value: Any) -> str:
    """A value as YAML spells it on the command line (null, true, [a, b], {k: v})."""
    if value is REQUIRED:
        return "required"
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _rows(prefix: str, found: list[Setting], node: Any, sections: tuple[str, ...] = ()) -> list[Row]:
    out = []
    for s in found:
        value = node.get(s.name, UNSET) if isinstance(node, DictConfig) else UNSET
        nested = isinstance(value, DictConfig) and (s.name in sections or isinstance(value.get("class_path"), str))
        default, current = show(s.default), "" if value is UNSET else show(value)
        current = "(section below)" if nested else current
        out.append(Row(f"{prefix}.{s.name}", s.type, default, "" if current == default else current, s.description))
    return out


def _class_sections(prefix: str, node: Any, class_path: str) -> list[Section]:
    """The section of `class_path` at `prefix`, then its nested sections (a parameter set to a
    section with its own class_path; a dataclass-documented section such as model.optim)."""
    cls = import_object(class_path)
    found = settings(cls)
    documented = getattr(cls, "setting_sections", None) or {}
    out = [Section(prefix, class_path, _rows(prefix, found, node, tuple(documented)))]
    for name, dataclass_type in documented.items():
        sub = node.get(name) if isinstance(node, DictConfig) else None
        defaults = getattr(cls, f"{name}_defaults", None)
        source = f"{dataclass_type.__module__}.{dataclass_type.__qualname__}"
        out.append(
            Section(f"{prefix}.{name}", source, _rows(f"{prefix}.{name}", settings(dataclass_type, defaults), sub))
        )
    for s in found:
        sub = node.get(s.name) if isinstance(node, DictConfig) else None
        if isinstance(sub, DictConfig) and isinstance(sub.get("class_path"), str):
            out.extend(_class_sections(f"{prefix}.{s.name}", sub, sub.class_path))
    return out


def sections(cfg: DictConfig) -> list[Section]:
    """The documented sections of a composed config, in the order a run builds them."""
    out: list[Section] = []
    for top in ("data", "model"):
        node = cfg.get(top)
        if isinstance(node, DictConfig) and isinstance(node.get("class_path"), str):
            out.extend(_class_sections(top, node, node.class_path))
    callbacks = cfg.get("callbacks")
    for name, node in callbacks.items() if isinstance(callbacks, DictConfig) else []:
        if isinstance(node, DictConfig) and node.get("enabled", True) is not False and node.get("class_path"):
            out.extend(_class_sections("callbacks." + str(name), node, str(node.class_path)))
    for key, class_path in IMPLICIT_CLASSES.items():
        out.extend(_class_sections(key, cfg.get(key), class_path))
    return out


def other_keys(cfg: DictConfig, documented: list[Section]) -> list[Row]:
    """Keys the train command reads itself (experiment, seed, logger.*, ...): type and value."""
    covered = {s.key for s in documented} | {r.key for s in documented for r in s.rows}
    rows = []
    for key in all_keys(cfg):
        value = OmegaConf.select(cfg, key)
        parent = key.rpartition(".")[0]
        if any(key == c or key.startswith(c + ".") for c in covered) or key.rsplit(".", 1)[-1] in HIDDEN:
            continue
        if isinstance(value, DictConfig) and len(value):  # its leaves are listed
            continue
        if parent in ("callbacks",) and value is None:  # a dropped callback
            continue
        rows.append(Row(key, type_name(value) if value is not None else "", "", show(value), ""))
    return rows


WIDTH = 44  # a longer type or value is cut (the key is never cut: it is what an override spells)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(rows: list[Row]) -> list[str]:
    cols = [
        ("key", [r.key for r in rows]),
        ("type", [r.type for r in rows]),
        ("default", [r.default for r in rows]),
        ("config", [r.value for r in rows]),
    ]
    widths = [max(len(h), *(len(v) for v in vals)) for h, vals in cols]
    widths = [widths[0], *(min(w, WIDTH) for w in widths[1:])]
    head = "  ".join(h.ljust(w) for (h, _), w in zip(cols, widths)) + "  description"
    lines = ["  " + head]
    for i, r in enumerate(rows):
        cells = [_cut(vals[i], w) for (_, vals), w in zip(cols, widths)]
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + r.description)
    return [line.rstrip() for line in lines]


def render(cfg: DictConfig) -> str:
    """The --list-keys text: one table per section (key, type, default, config value, description)."""
    documented = sections(cfg)
    out = [
        f"# config keys of {cfg.get('experiment')} (override any with key=value; `config` = this config's "
        "value where it differs from the default)"
    ]
    for s in documented:
        out += ["", f"{s.key}: {s.source}", *_table(s.rows)]
    rest = other_keys(cfg, documented)
    if rest:
        out += ["", "other keys (read by the train command; see configs/base.yaml)", *_table(rest)]
    return "\n".join(out) + "\n"

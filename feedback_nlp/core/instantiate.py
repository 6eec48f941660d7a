"""Build objects named by `class_path` in a config section, checking keys before construction.

Why: configs wire models, data and callbacks without code knowing each other. Checking the
section against the constructor signature turns a misspelt key into an error that names the
key and the closest valid parameter, before any weights are loaded.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from typing import Any, Mapping

from omegaconf import DictConfig

from feedback_nlp.core.config import ConfigError, closest, to_dict
from feedback_nlp.core.errors import UserError
from feedback_nlp.core.signature import constructor_params


def import_object(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"cannot import class_path '{path}': {e}") from e


_PRIMITIVES = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _check_annotation(where: str, name: str, annotation: Any, value: Any) -> None:
    if value is None or annotation is inspect.Parameter.empty:
        return
    origin = typing.get_origin(annotation)
    options = (
        typing.get_args(annotation)
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None))
        else (annotation,)
    )
    allowed: list[type] = []
    for opt in options:
        if opt is type(None):  # Optional[...]: None was handled above
            continue
        if opt in _PRIMITIVES:
            allowed.extend(_PRIMITIVES[opt])
        else:
            return  # complex annotation: let the constructor judge
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = isinstance(value, tuple(allowed))
    if not ok:
        want = " or ".join(sorted({getattr(o, "__name__", str(o)) for o in options if o is not type(None)}))
        want += " or null" if type(None) in options else ""
        raise ConfigError(f"config key '{where}.{name}' expects {want}, got {type(value).__name__} {value!r}")


def check_kwargs(cls: Any, kwargs: Mapping[str, Any], where: str) -> None:
    params, open_ended = constructor_params(cls)
    if not open_ended:
        for key in kwargs:
            if key not in params:
                hint = closest(key, params)
                raise ConfigError(
                    f"unknown config key '{where}.{key}' for {getattr(cls, '__name__', cls)}"
                    + (f"; did you mean '{where}.{hint}'?" if hint else "")
                )
    for key, value in kwargs.items():
        if key in params:
            param, owner = params[key]
            annotation = param.annotation if not isinstance(param.annotation, str) else _eval_annotation(owner, key)
            _check_annotation(where, key, annotation, value)
    missing = [k for k, (p, _) in params.items() if p.default is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise ConfigError(f"config section '{where}' is missing required key(s): {', '.join(missing)}")


def _eval_annotation(function: Any, key: str) -> Any:
    try:
        return typing.get_type_hints(function).get(key, inspect.Parameter.empty)
    except Exception:
        return inspect.Parameter.empty


def accepted(cls: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `extra` that `cls` takes as constructor parameters."""
    params, _ = constructor_params(cls)
    return {k: v for k, v in extra.items() if k in params}


def instantiate(section: DictConfig | Mapping[str, Any], where: str, **extra: Any) -> Any:
    """Construct `section.class_path(**rest, **extra)`; `extra` entries the class lacks are dropped.

    A value that is itself a section with a `class_path` (e.g. `data.noisy_negatives`) is built
    first, the same way, so a component's settings stay one nested section that builds its own
    object instead of prefixed keys flattened into its owner's signature.
    """
    data = to_dict(section)
    if "class_path" not in data:
        raise ConfigError(f"config section '{where}' needs a class_path")
    cls = import_object(data.pop("class_path"))
    check_kwargs(cls, {**data, **accepted(cls, extra)}, where)
    for key, value in data.items():
        if isinstance(value, Mapping) and "class_path" in value:
            data[key] = instantiate(value, f"{where}.{key}")
    try:
        return cls(**data, **accepted(cls, extra))
    except UserError:
        raise
    except (ValueError, TypeError) as e:  # the constructor refused a value: a config error
        raise ConfigError(f"{_culprit(where, data, str(e))}: {e}") from None


def _culprit(where: str, data: Mapping[str, Any], message: str) -> str:
    """`where.key` when the constructor's message names exactly one of the section's keys (by
    name or by its value), else the section: the key a user must change."""
    named = [k for k in data if re.search(rf"\b{re.escape(k)}\b", message)]
    if len(named) != 1:
        named = [k for k, v in data.items() if isinstance(v, (str, int, float)) and repr(v) in message]
    return f"{where}.{named[0]}" if len(named) == 1 else where

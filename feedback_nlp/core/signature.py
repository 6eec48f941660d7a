"""The parameters a configured class really accepts, following `**kwargs` up to its base classes.

Why: a subclass that adds a few settings takes the shared ones as `**base` and passes them to
`super().__init__`, instead of restating every parameter of its base (the 13 DataModule
settings were repeated in three signatures). Config checks (unknown keys, types, required
keys, `data.<key>=` overrides) must still see the base's parameters, so they read them here.

Settings document themselves in one place: the type and default in the signature, the one-line
description in the Google-style `Args:` block of the class docstring (a base class documents
the parameters it declares). `settings()` reads all three for `feedback-nlp train --list-keys`,
and tests/test_config_keys.py fails on a configured parameter without a description.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SKIP = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)


def constructor_params(target: Any) -> tuple[dict[str, tuple[inspect.Parameter, Callable]], bool]:
    """({name: (parameter, the function that declares it)}, whether unknown keywords are accepted).

    For a class: its `__init__`, then, while that `__init__` takes `**kwargs`, the next
    `__init__` up the MRO (Lightning's excluded: it accepts nothing a config sets). `**kwargs`
    that reach `object` are open: any key is accepted, as the class's signature says.
    For a function: its own parameters.
    """
    if not inspect.isclass(target):
        sig = inspect.signature(target)
        own = {k: (p, target) for k, p in sig.parameters.items() if p.kind not in SKIP}
        return own, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    params: dict[str, tuple[inspect.Parameter, Callable]] = {}
    for klass in target.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:  # **kwargs that no base declares: the class takes any keyword
            return params, bool(params) or target.__init__ is not object.__init__
        if params and klass.__module__.startswith(("lightning.", "pytorch_lightning.")):
            return params, False  # following **kwargs up: Lightning's __init__ takes nothing a config sets
        init = vars(klass)["__init__"]
        sig = inspect.signature(init)
        for name, p in sig.parameters.items():
            if name != "self" and p.kind not in SKIP:
                params.setdefault(name, (p, init))
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return params, False
    return params, True


REQUIRED = inspect.Parameter.empty  # the default of a setting that a config must give


@dataclass(frozen=True)
class Setting:
    """One constructor parameter as a config key: its type, default and one-line description."""

    name: str
    type: str  # the annotation as written ("int | None"); "" when unannotated
    default: Any  # REQUIRED when the key has no default
    description: str  # "" when no `Args:` block documents it
    owner: str  # the class (or function) that declares it


def _docstrings(target: Any) -> list[str]:
    """The docstrings that may document `target`'s parameters, most specific first: for a class,
    each class of its MRO (its own docstring, then its `__init__`'s); for a function, its own."""
    if not inspect.isclass(target):
        return [target.__doc__] if target.__doc__ else []
    out: list[str] = []
    for klass in target.__mro__:
        init = vars(klass).get("__init__")
        for doc in (vars(klass).get("__doc__"), getattr(init, "__doc__", None)):
            if isinstance(doc, str) and doc.strip():
                out.append(doc)
    return out


def _one_line(text: str, limit: int = 120) -> str:
    """A parameter's description on one line: its first paragraph, or, past `limit` characters
    (third-party docstrings run on), its first sentence."""
    line = " ".join(text.strip().split("\n\n", 1)[0].split())
    if len(line) > limit:
        line = re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", line, maxsplit=1)[0]
    return line


def param_descriptions(target: Any) -> dict[str, str]:
    """{parameter: one-line description} from the Google-style `Args:` blocks of `target`'s
    docstrings. The most specific wins: a subclass documents its own parameters, a base class
    documents the parameters it declares (and that subclasses take as `**base`)."""
    from docstring_parser import DocstringStyle, ParseError, parse

    out: dict[str, str] = {}
    for doc in _docstrings(target):
        try:
            params = parse(doc, style=DocstringStyle.GOOGLE).params
        except ParseError:  # a third-party docstring in another style documents nothing here
            continue
        for p in params:
            if p.description and p.description.strip():
                out.setdefault(p.arg_name, _one_line(p.description))
    return out


def _type_text(annotation: Any) -> str:
    """The annotation as text, class names without their module path."""
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return re.sub(r"\b(?:[a-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)


def settings(target: Any, defaults: Mapping[str, Any] | None = None) -> list[Setting]:
    """Every parameter `target` accepts (following `**kwargs` up the MRO, as `constructor_params`)
    with its type, default and description, in signature order.

    `defaults` replaces declared defaults (a task's own defaults for a shared settings class);
    a class's `default_overrides` (defaults it passes to its base) apply the same way.
    """
    params, _ = constructor_params(target)
    docs = param_descriptions(target)
    given = {**dict(getattr(target, "default_overrides", None) or {}), **dict(defaults or {})}
    out = []
    for name, (param, function) in params.items():
        owner = getattr(function, "__qualname__", str(function)).rsplit(".__init__", 1)[0]
        default = given.get(name, param.default)
        out.append(Setting(name, _type_text(param.annotation), default, docs.get(name, ""), owner))
    return out

"""The parameters a configured class really accepts, following `**kwargs` up to its base classes.

Why: a subclass that adds a few settings takes the shared ones as `**base` and passes them to
`super().__init__`, instead of restating every parameter of its base (the 13 DataModule
settings were repeated in three signatures). Config checks (unknown keys, types, required
keys, `data.<key>=` overrides) must still see the base's parameters, so they read them here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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

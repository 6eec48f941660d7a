"""`nn.ModuleDict` whose entries are all one kind of module (a metric per stage or per level).

Why: `nn.ModuleDict[key]` is typed as a bare `nn.Module`, and a bare module's attributes are
`Tensor | Module`, so `store["val"].update(...)` cannot be type-checked and a typo in a metric's
method is only found when that line runs. `ModuleMap({...: CatMetric()})` keeps the entry type,
so mypy checks every call on an entry. At runtime it is a ModuleDict (same state_dict keys).
"""

from __future__ import annotations

from collections.abc import ItemsView, Mapping, ValuesView
from typing import Generic, TypeVar, cast

from torch import nn

M = TypeVar("M", bound=nn.Module)


class ModuleMap(nn.ModuleDict, Generic[M]):
    """A ModuleDict typed by its entries, all of type `M` (given at construction; don't add others)."""

    def __init__(self, modules: Mapping[str, M]) -> None:
        super().__init__(modules)

    # the casts state what __init__ guarantees: every entry is an M
    def __getitem__(self, key: str) -> M:
        return cast(M, super().__getitem__(key))

    def values(self) -> ValuesView[M]:
        return cast(ValuesView[M], super().values())

    def items(self) -> ItemsView[str, M]:
        return cast(ItemsView[str, M], super().items())

"""Several exports behind one server: names, routes, and who answers the production route.

Why (001 §5: "blue-green and canary deployment", "version controlling all the deployed
models"): a candidate is served next to production before it replaces it -- as a shadow
(scored on every production request, its rows only in the prediction log) or as a canary (a
fixed, id-hashed fraction of production records answered by it). Every export is its own
LitAPI at `/predict/<name>` (LitServe's multi-API server: own request queue, own workers);
`POST /predict` is the production route: the default export, plus the canary split and the
shadow copy. A route's body is validated with its own export's record kind at the HTTP edge.

The canary split is a pure function of the record id: sha256(id) read as a number in [0, 1)
below the fraction. The same id always goes to the same export, whichever API-server process
or worker answers, across restarts, and whatever else the request holds.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import UserError

PREDICT = "/predict"
DEFAULT_NAME = "default"  # the name of a plain `--export DIR`
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RouteError(UserError, ValueError):
    pass


def route_path(name: str) -> str:
    return f"{PREDICT}/{name}"


def parse_exports(items: list[str]) -> dict[str, Path]:
    """`--export NAME=DIR` (repeated) or one plain `--export DIR` (named `default`), in order.

    A value is NAME=DIR only when the part before the first `=` is a valid name (no `/`), so a
    folder such as `outputs/run=3/export` stays a plain path. Paths keep their symlinks: a
    `current` link is what the server watches for a reload."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if sep and _NAME.match(name):
            if not path:
                raise RouteError(f"--export {item!r}: expected NAME=DIR")
        else:
            name, path = DEFAULT_NAME, item
        if name in out:
            what = "a plain --export DIR is named 'default'; " if name == DEFAULT_NAME else ""
            raise RouteError(f"--export: the name {name!r} is given twice ({what}name each export NAME=DIR)")
        out[name] = Path(os.path.abspath(path))
    if not out:
        raise RouteError("give --export DIR, or --export NAME=DIR for each export")
    return out


def canary_unit(record_id: str) -> float:
    """The id's place in [0, 1): the first 8 bytes of sha256(id) over 2**64."""
    return int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "big") / 2.0**64


def goes_to_canary(record_id: str, fraction: float) -> bool:
    return canary_unit(record_id) < fraction


@dataclass(frozen=True)
class Route:
    """One export behind the server (what the HTTP edge needs to know about it)."""

    name: str
    kind: str  # the record kind its body is validated with
    task: str
    model_version: str  # at start-up (a reload may change it; rows carry the one that answered)

    @property
    def path(self) -> str:
        return route_path(self.name)


@dataclass(frozen=True)
class Traffic:
    """Who answers `POST /predict`: the default export, a canary's share, a shadow copy."""

    routes: dict[str, Route]
    default: str
    canary: str | None = None
    canary_fraction: float = 0.0
    shadow: str | None = None
    shadow_max_inflight: int = 64  # per API-server process; more are dropped (counted), never queued

    def __post_init__(self) -> None:
        if self.default not in self.routes:
            raise RouteError(f"--default {self.default!r} is not an --export name ({', '.join(self.routes)})")
        base = self.routes[self.default]
        for flag, name in (("--canary", self.canary), ("--shadow", self.shadow)):
            if name is None:
                continue
            if name not in self.routes:
                raise RouteError(f"{flag} {name!r} is not an --export name ({', '.join(self.routes)})")
            if name == self.default:
                raise RouteError(f"{flag} {name!r} is the default export; name another export")
            if self.routes[name].task != base.task:
                raise RouteError(
                    f"{flag} {name!r} is a {self.routes[name].task} export, the default {self.default!r} "
                    f"a {base.task} one: a canary or shadow must be of the default export's task"
                )
        if self.canary is not None and self.canary == self.shadow:
            raise RouteError(f"--canary and --shadow name the same export {self.canary!r}")
        if self.canary is not None and not 0.0 < self.canary_fraction < 1.0:
            raise RouteError(f"--canary-fraction must be in (0, 1), got {self.canary_fraction}")
        if self.shadow_max_inflight < 1:
            raise RouteError(f"--shadow-max-inflight must be >= 1, got {self.shadow_max_inflight}")

    def route_of(self, path: str) -> Route | None:
        """The export a predict path names (`/predict` -> the default), or None."""
        if path == PREDICT:
            return self.routes[self.default]
        if path.startswith(PREDICT + "/"):
            return self.routes.get(path[len(PREDICT) + 1 :])
        return None

    def paths(self) -> list[str]:
        return [PREDICT, *(r.path for r in self.routes.values())]

    def describe(self) -> dict[str, Any]:
        """What `GET /metadata` says about the routing (JSON)."""
        return {
            "default": self.default,
            "canary": None if self.canary is None else {"name": self.canary, "fraction": self.canary_fraction},
            "shadow": self.shadow,
            "routes": {r.path: r.name for r in self.routes.values()} | {PREDICT: self.default},
        }

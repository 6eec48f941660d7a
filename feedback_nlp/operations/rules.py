"""Bounds on KPIs, one syntax for `monitor`'s alerts and `compare`'s promotion rules.

Why one syntax: an operator writes "recall>=0.9" for an alert and "recall>=0" for a promotion
rule (on candidate - production); reading both the same way keeps the two jobs explainable.

    [WINDOW[/LANGUAGE]:]METRIC OP VALUE      OP one of >= <= > <

`week/de:precision>=0.6` holds for German weekly windows only; `psi<=0.2` for every window and
language. A bound on a metric that has no value in a row (no labels yet, too few scores) is
not checked there.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import UserError

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">="}
_RULE = re.compile(
    r"^\s*(?:(?P<scope>[\w-]+(?:/[\w-]+)?)\s*:)?\s*(?P<metric>[\w/.-]+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>\S+)\s*$"
)


class RuleError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    metric: str
    op: str
    value: float
    window: str | None = None
    language: str | None = None
    text: str = ""

    def applies(self, window: str | None = None, language: str | None = None) -> bool:
        return (self.window is None or self.window == window) and (self.language is None or self.language == language)

    def holds(self, value: float) -> bool:
        return bool(OPS[self.op](value, self.value))

    def violation(self, value: float) -> str:
        """`precision 0.412 < 0.6`: the value and the crossed bound."""
        return f"{self.metric} {value:.4g} {NEGATED[self.op]} {self.value:g}"


def parse_rule(text: str, metrics: Iterable[str] | None = None, windows: Iterable[str] | None = None) -> Rule:
    """One rule; RuleError names the text, and the known metrics or windows when one is unknown."""
    m = _RULE.match(str(text))
    if not m:
        raise RuleError(f"rule {text!r}: expected [WINDOW[/LANGUAGE]:]METRIC OP VALUE, e.g. 'week:precision>=0.6'")
    try:
        value = float(m["value"])
    except ValueError:
        raise RuleError(f"rule {text!r}: {m['value']!r} is not a number") from None
    if not math.isfinite(value):
        raise RuleError(f"rule {text!r}: the bound must be a finite number")
    known = sorted(metrics) if metrics is not None else None
    if known is not None and m["metric"] not in known:
        raise RuleError(f"rule {text!r}: unknown metric {m['metric']!r} (known: {', '.join(known)})")
    window, _, language = (m["scope"] or "").partition("/")
    if window and windows is not None and window not in windows:
        raise RuleError(f"rule {text!r}: unknown window {window!r} (known: {', '.join(windows)})")
    return Rule(m["metric"], m["op"], value, window or None, language or None, str(text).strip())


def load_rules(path: Path, metrics: Iterable[str] | None = None, windows: Iterable[str] | None = None) -> list[Rule]:
    """Rules from a YAML file: a list of rule strings, or `{bounds: [...]}`, or
    `{METRIC: {min: X, max: Y}}` (min is >=, max is <=)."""
    import yaml

    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuleError(f"--bounds {path}: no such file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise RuleError(f"--bounds {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if isinstance(data, Mapping) and "bounds" in data:
        data = data["bounds"]
    texts: list[str] = []
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        texts = list(data)
    elif isinstance(data, Mapping):
        for metric, limits in data.items():
            if not isinstance(limits, Mapping) or not set(limits) <= {"min", "max"} or not limits:
                raise RuleError(f"--bounds {path}: {metric}: expected {{min: X, max: Y}}")
            texts += [f"{metric}{'>=' if k == 'min' else '<='}{v}" for k, v in limits.items()]
    else:
        raise RuleError(f"--bounds {path}: expected a list of rules or a mapping METRIC: {{min, max}}")
    return [parse_rule(t, metrics, windows) for t in texts]

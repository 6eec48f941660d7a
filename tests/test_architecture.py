"""Layering rules of docs/architecture.md, read from the source: no import cycles between the
package's modules, and serving/ and nets/ never import training code.

Why: cycles (seacat.py <-> seacat_serving.py) made serving import Lightning; a rule in a test
fails the day someone adds one back. Imports inside functions count too: a lazy import is still
a dependency.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return {name: REPO / folder for name, folder in cfg["tool"]["setuptools"]["package-dir"].items()}


def modules() -> dict[str, Path]:
    out = {}
    for pkg, folder in package_dirs().items():
        for path in folder.glob("*.py"):
            out[pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"] = path
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != "feedback_nlp":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(g):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_serving_and_nets_import_no_training_code():
    training = (
        "feedback_nlp.lightning_modules",
        "feedback_nlp.callbacks",
        "feedback_nlp.datamodules.base",
        "feedback_nlp.train",
    )
    for name, deps in graph().items():
        if name.startswith(("feedback_nlp.serving", "feedback_nlp.nets")):
            bad = sorted(d for d in deps if d.startswith(training))
            assert not bad, f"{name} imports training code: {bad}"

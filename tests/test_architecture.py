"""The layers of docs/architecture.md, read from the source: every import between the package's
folders points down, no module imports itself back, and the serving side imports no Lightning.

Why: loops between folders (common <-> callbacks, nets <-> datamodules) made every folder depend
on every other, so serving imported Lightning and no layer could be read alone. A rule in a test
fails the day someone adds one back. Imports inside functions count too: a lazy import is still
a dependency. Subfolders (callbacks/plots) belong to their folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "feedback_nlp"

# Lowest first; a folder may import only folders of a LOWER layer (peers in one layer don't
# import each other). `feedback_nlp` is the package's own __init__ / __main__.
LAYERS: list[tuple[str, ...]] = [
    ("core",),  # io, config composition, instantiate, signature, vocabulary, records, sentences, padding
    ("nets", "datamodules", "metrics", "demo_data"),  # networks; data; metric math; demo data
    ("universal_model",),  # question repository + k-NN vote (no training)
    ("serving",),  # predictors, registry, HTTP edge: no Lightning
    ("training", "operations"),  # run identity, loggers, checkpoints, export writer; monitor, compare, batch scoring
    ("lightning_modules", "callbacks"),  # the tasks' LightningModules and the Trainer callbacks
    ("cli",),  # the `feedback-nlp` subcommands
    ("scripts", "feedback_nlp"),  # data converters and studies; the package entry
]
RANK = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
NO_LIGHTNING = ("core", "nets", "metrics", "universal_model", "serving", "operations")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def folder_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "feedback_nlp"


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (a name resolves to its longest known module)."""
    mods = modules()
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for imported in imports_of(path):
            while imported and imported not in mods:
                imported = imported.rpartition(".")[0]
            if imported and imported not in (name, "feedback_nlp"):
                deps.add(imported)
        out[name] = deps
    return out


def folder_edges(g: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for mod, deps in g.items():
        for dep in deps:
            a, b = folder_of(mod), folder_of(dep)
            if a != b:
                edges.setdefault((a, b), []).append(f"{mod} -> {dep}")
    return edges


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


def upward(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    """Every folder-to-folder import that does not point to a lower layer."""
    return [
        f"{a} (layer {RANK[a]}) imports {b} (layer {RANK[b]}): {', '.join(sorted(why)[:3])}"
        for (a, b), why in sorted(edges.items())
        if RANK[a] <= RANK[b]
    ]


def test_every_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders | {"feedback_nlp"} == set(RANK), "give every package folder a layer in LAYERS"


def test_modules_include_subfolders():
    assert folder_of("feedback_nlp.callbacks.plots.figures") == "callbacks"
    assert "feedback_nlp.callbacks.plots.figures" in modules()


def test_imports_between_folders_point_down():
    bad = upward(folder_edges(graph()))
    assert not bad, "imports against the layers of docs/architecture.md:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_checks_find_a_planted_loop_and_an_upward_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    planted = {("nets", "datamodules"): ["x"], ("datamodules", "nets"): ["y"], ("serving", "training"): ["z"]}
    assert len(upward(planted)) == 3
    assert upward({("training", "serving"): ["ok"], ("cli", "core"): ["ok"]}) == []


@pytest.mark.parametrize("folder", NO_LIGHTNING)
def test_serving_side_imports_no_lightning(folder):
    for path in (PACKAGE / folder).rglob("*.py"):
        bad = sorted(n for n in imports_of(path) if n.split(".")[0] in ("lightning", "pytorch_lightning"))
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"

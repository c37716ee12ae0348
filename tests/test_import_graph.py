"""The project's import graph: no circles (counting imports inside functions), and the layers import one way.

Every module of `ingest/`, `eval/`, `flows/` (and `benchmarks/`) is parsed with `ast`; every import
counts, wherever it is written: at module level, inside a function, under `if TYPE_CHECKING:`.
`from ingest.x import y` is an edge to `ingest.x.y` when that is a module, else to `ingest.x`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "eval", "flows", "benchmarks")

# What each layer must not import (project packages or third-party top-level names).
FORBIDDEN = {
    "ingest": {"eval", "flows", "benchmarks", "prefect"},
    "eval": {"flows", "benchmarks", "prefect"},
}

Graph = dict[str, set[str]]


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of the given packages under `root`, by dotted name (a package is its `__init__`)."""
    out: dict[str, Path] = {}
    for package in packages:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest dotted prefix of `name` that is one of `modules` (None: not a project module)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, source: str, modules: set[str], *, is_package: bool = False) -> set[str]:
    """Every name `module` imports, anywhere in its body: project modules resolved, others top-level.

    Args:
        module: The importing module's dotted name (for relative imports).
        source: Its source text.
        modules: The project's module names.
        is_package: Whether `module` is a package's `__init__` (relative imports start from itself).

    Returns:
        Project modules (`ingest.x`) and third-party top-level names (`prefect`) it imports.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_resolve(alias.name, modules) or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in modules else _resolve(base, modules)
                found.add(target or base.split(".")[0])
    return found


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> tuple[Graph, Graph]:
    """The project graph (edges between project modules) and every module's imports (all names)."""
    files = module_files(root, packages)
    modules = set(files)
    everything: Graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        everything[name] = imports_of(name, path.read_text(encoding="utf-8"), modules, is_package=is_package)
    graph = {name: {t for t in targets if t in modules and t != name} for name, targets in everything.items()}
    return graph, everything


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected component of size > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is a few hundred modules, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first back to it)."""
    start = min(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def layer_violations(everything: Graph) -> list[str]:
    """`module -> import` for every import a layer must not make."""
    bad = []
    for module, targets in sorted(everything.items()):
        forbidden = FORBIDDEN.get(module.split(".")[0], set())
        bad += [f"{module} -> {t}" for t in sorted(targets) if t.split(".")[0] in forbidden]
    return bad


@pytest.fixture(scope="module")
def graphs() -> tuple[Graph, Graph]:
    return import_graph()


def test_the_parser_sees_imports_everywhere_in_a_module() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import pkg.a\n"
        "from pkg import b\n"
        "from pkg.b import thing\n"
        "from . import c\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.d import D\n"
        "def f() -> None:\n"
        "    import prefect.tasks\n"
        "    from .sub import e\n"
    )
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.sub", "pkg.sub.e", "pkg.mod"}
    found = imports_of("pkg.mod", source, modules)
    assert found == {"__future__", "typing", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "prefect", "pkg.sub.e"}
    assert imports_of("pkg.sub", "from . import c\nfrom .e import x\n", modules, is_package=True) == {
        "pkg.sub.e",
        "pkg.sub",
    }


def test_find_cycles_reports_the_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_covers_the_packages_and_function_level_imports(graphs: tuple[Graph, Graph]) -> None:
    graph, everything = graphs
    for package in ("ingest", "eval", "flows"):
        assert package in graph, f"package {package} not found under {ROOT}"
    assert "ingest.parallel" in graph["ingest.pipeline"]  # module level
    assert "ingest.encoder.static" in graph["ingest.pipeline"]  # only inside functions
    assert "prefect" in everything["flows.ingest_flow"]  # third-party names are kept for the layer rule


def test_no_import_cycles(graphs: tuple[Graph, Graph]) -> None:
    cycles = find_cycles(graphs[0])
    assert not cycles, "import cycles (imports inside functions count):\n" + "\n".join(
        "  " + " -> ".join(cycle) for cycle in cycles
    )


def test_layers_import_one_way(graphs: tuple[Graph, Graph]) -> None:
    bad = layer_violations(graphs[1])
    rule = "ingest/ imports no eval, flows, benchmarks, prefect; eval/ no flows, benchmarks, prefect"
    assert not bad, rule + ":\n" + "\n".join("  " + line for line in bad)

"""The floor plan of ``corerl/`` (docs/architecture.md): every module on one layer, imports only downward.

Every ``import`` and ``from ... import`` in ``corerl/`` is read with ``ast`` (function-level and
``TYPE_CHECKING`` imports included: a deferred import is still a dependency). An import of a module on a
higher layer fails naming the importing module, the imported module and both layers; so does any loop
of imports, within a layer too. ``LAYERS`` is the table of docs/architecture.md, which a test keeps in
step with it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "corerl"
DOC = ROOT / "docs" / "architecture.md"

# Bottom to top. Each entry is a module or package directly under corerl/ (a package's submodules share
# its layer); "corerl" is the package's own __init__ (its lazy names reach up to the engine).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "answers",
            "voting",
            "rewards",
            "graders",
            "verify_worker",
            "demo",
            "data",
            "config",
            "config_checks",
            "arithmetic",
            "machine",
        ),
    ),
    ("generation", ("generation", "decoding", "evaluate", "collapse")),
    ("methods", ("organism", "rephrase", "mitigations")),
    ("engine", ("engine",)),
    ("study", ("study", "plots")),
    ("tools", ("tools", "cli", "install", "notebooks", "corerl")),
)
LAYER_OF: dict[str, int] = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER_OF.get(parts[1] if len(parts) > 1 else parts[0])


def layer_label(module: str) -> str:
    index = layer(module)
    return "no layer" if index is None else f"layer {index} ({LAYERS[index][0]})"


def imported(path: Path, module: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported corerl module, line) for every import in the file; ``from a import b`` names the
    submodule ``a.b`` when ``b`` is one."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield (submodule if submodule in known else source), node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """importing module -> {imported corerl module: first line}."""
    found = modules()
    known = set(found)
    graph: dict[str, dict[str, int]] = {}
    for module, path in found.items():
        edges: dict[str, int] = {}
        for target, line in imported(path, module, known):
            if (target == "corerl" or target.startswith("corerl.")) and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def loops(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import loops: one cycle (a path back to its start) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_in(graph, set(component)) for component in components]


def cycle_in(graph: dict[str, dict[str, int]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph.get(node, {})):
                if target == start:
                    return [*paths[node], start]
                if target in component and target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def describe_loop(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [
        f"{a} ({layer_label(a)}) -> {b} ({layer_label(b)}) at line {graph[a][b]}"
        for a, b in zip(cycle, cycle[1:], strict=False)
    ]
    return "import loop:\n    " + "\n    ".join(steps)


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(module for module in modules() if layer(module) is None)
    assert not unplaced, f"modules on no layer (add them to LAYERS and docs/architecture.md): {unplaced}"
    stale = sorted(set(LAYER_OF) - {name.split(".")[1] if "." in name else name for name in modules()})
    assert not stale, f"LAYERS names what corerl/ no longer has: {stale}"


def test_imports_only_go_down() -> None:
    graph = import_graph()
    upward = [
        f"{source} ({layer_label(source)}) imports {target} ({layer_label(target)}) at line {line}"
        for source, edges in graph.items()
        for target, line in edges.items()
        if layer(source) is not None and layer(target) is not None and layer(target) > layer(source)
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_loop() -> None:
    graph = import_graph()
    found = loops(graph)
    assert not found, "\n".join(describe_loop(graph, cycle) for cycle in found)


def test_loop_finder_names_a_loop() -> None:
    """The checks above can fail: a made-up loop and an upward edge are found and named."""
    graph = {
        "corerl.evaluate": {"corerl.mitigations.early_stopping": 3},
        "corerl.mitigations.early_stopping": {"corerl.evaluate": 7},
        "corerl.answers": {},
    }
    [cycle] = loops(graph)
    assert cycle == ["corerl.evaluate", "corerl.mitigations.early_stopping", "corerl.evaluate"]
    message = describe_loop(graph, cycle)
    assert "corerl.evaluate (layer 1 (generation)) -> corerl.mitigations.early_stopping (layer 2" in message
    assert layer("corerl.evaluate") < layer("corerl.mitigations.early_stopping")


def documented_layers(text: str) -> dict[str, int]:
    """module -> layer from the rows ``| N | `corerl/...` | ... |`` of docs/architecture.md."""
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`(corerl/[^`]*)`", text, re.M)
    documented = {}
    for number, path in rows:
        parts = path.removesuffix("/").removesuffix(".py").split("/")
        documented[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = int(number)
    return documented


def test_architecture_doc_lists_every_module_on_its_layer() -> None:
    """docs/architecture.md has one row per module, on the layer LAYERS gives it."""
    documented = documented_layers(DOC.read_text(encoding="utf-8"))
    assert documented == {module: layer(module) for module in modules()}

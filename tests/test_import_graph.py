"""The package's import graph has no circles, counting every import: at module level, inside functions and
under ``TYPE_CHECKING`` alike (a circle there is still two modules that each need the other), and lower layers
never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamseg"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


MODULES = module_names()


def owner(name: str) -> str | None:
    """The module ``name`` lives in: ``streamseg.config.RunConfig`` -> ``streamseg.config``."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        for target in targets:
            if target.startswith("streamseg"):
                module = owner(target)
                if module is not None and module != name:
                    found.add(module)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in GRAPH[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_the_walk_sees_the_package_s_imports() -> None:
    """A walk that found nothing would pass for no circles."""
    assert "streamseg.pipeline.batcher" in GRAPH["streamseg.pipeline.assemble"]
    assert "streamseg.sources.table" in GRAPH["streamseg.plugins"]  # an import from a package's module


def test_no_import_circles() -> None:
    assert circles() == []


@pytest.mark.parametrize(
    "lower, higher",
    [
        ("streamseg.backends", ("streamseg.pipeline", "streamseg.stages", "streamseg.api", "streamseg.cli", "streamseg.http")),
        ("streamseg.sources", ("streamseg.pipeline", "streamseg.plugins", "streamseg.api", "streamseg.cli")),
        ("streamseg.pipeline", ("streamseg.api", "streamseg.cli", "streamseg.cluster")),
        ("streamseg.image", ("streamseg.pipeline", "streamseg.stages", "streamseg.api", "streamseg.cli")),
    ],
)
def test_lower_layers_never_import_higher_ones(lower: str, higher: tuple[str, ...]) -> None:
    reaching_up = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items() if module == lower or module.startswith(lower + ".")
        for target in targets if target.startswith(higher)
    )
    assert reaching_up == []

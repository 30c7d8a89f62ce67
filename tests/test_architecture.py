"""The import graph of the six project packages: no circle, and no private name used across modules.

Every ``import`` and ``from ... import`` in a module counts, wherever it sits (a lazy import inside a function
or one under ``TYPE_CHECKING`` ties two files together just the same). A circle means two files cannot be read,
or tested, one at a time (issue 18); a private helper (``faces._as_rgb``) used from another module is an
interface nobody promised. The graph is read with the standard library's ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("governance", "detectors", "policies", "provenance", "generator", "media")


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of :data:`PACKAGES` under ``root`` (migrations aside:
    Alembic loads them by path)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path) -> Iterator[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for every import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[:len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            for alias in node.names:
                yield base, alias.name, node.lineno


def _owner(target: str, modules: dict[str, Path]) -> str | None:
    """The project module ``target`` (``a.b.c``, maybe a name inside a module) belongs to, or None."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports. A module importing a package it sits in is left out (Python
    runs the package's ``__init__`` first anyway: that is no circle)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for module, imported, _line in _imports(name, path):
            target = _owner(f"{module}.{imported}" if imported else module, modules)
            if target is not None and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_among_the_project_packages() -> None:
    graph = import_graph(ROOT)
    assert len(graph) > 100  # the whole tree was read
    assert circles(graph) == []


def test_no_private_name_is_imported_from_another_module() -> None:
    modules = _modules(ROOT)
    crossings = []
    for name, path in modules.items():
        for module, imported, line in _imports(name, path):
            owner = _owner(module, modules)
            if owner is None or owner == name:
                continue
            private_name = imported is not None and imported.startswith("_") and not imported.startswith("__")
            # a private module (provenance._borders) serves its own package only
            private_module = any(part.startswith("_") and not part.startswith("__")
                                 for part in owner.split(".")[1:])
            if private_name or (private_module and not name.startswith(owner.rpartition(".")[0] + ".")):
                crossings.append(f"{path.relative_to(ROOT)}:{line}: {module} import {imported}")
    assert crossings == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
])
def test_circles_finds_every_circle(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(circles(edges)) == expected


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "governance"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from governance.b import X\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    for other in PACKAGES[1:]:
        (tmp_path / other).mkdir()
    assert circles(import_graph(tmp_path)) == [["governance.a", "governance.b"]]

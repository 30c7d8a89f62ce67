"""The benchmarks in ``bench/`` still name what the product provides (issue 12: ``make bench`` must rerun).

Nothing in the test suite runs the benchmarks (they take minutes and print numbers, not verdicts), so a rename in
the product used to break them silently (``detectors.faces.backend_from_settings`` moved to
``detectors.backends``, ``governance.verification.services._read`` became ``reading.read_upload``). This reads
every ``bench/*.py`` and checks that each name it imports from a project package, at the top or inside a
function, and each attribute it takes from a project module imported under an alias, exists."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("governance", "detectors", "policies", "provenance", "generator", "media", "bench")
BENCHES = sorted((ROOT / "bench").glob("*.py"))


def _ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _resolve(module: str, name: str) -> bool:
    mod = importlib.import_module(module)
    if hasattr(mod, name):
        return True
    try:  # a submodule imported by name: from package import module
        importlib.import_module(f"{module}.{name}")
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("path", BENCHES, ids=lambda p: p.name)
def test_every_name_a_benchmark_imports_exists(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}
    missing: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _ours(node.module):
            for a in node.names:
                if not _resolve(node.module, a.name):
                    missing.append(f"line {node.lineno}: from {node.module} import {a.name}")
                elif _is_module(f"{node.module}.{a.name}"):
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if _ours(a.name):
                    importlib.import_module(a.name)
                    if a.asname:
                        aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if not hasattr(importlib.import_module(module), node.attr):
                missing.append(f"line {node.lineno}: {module}.{node.attr} (as {node.value.id}.{node.attr})")
    assert not missing, f"{path.name} names what the product no longer has:\n" + "\n".join(missing)


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        return False
    return True


def test_the_check_sees_a_stale_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself fails on a name that does not exist (it would otherwise pass on anything)."""
    stale = tmp_path / "stale.py"
    stale.write_text("def f():\n    from detectors.faces import backend_from_settings\n")
    monkeypatch.setattr(f"{__name__}.BENCHES", [stale])
    with pytest.raises(AssertionError, match="backend_from_settings"):
        test_every_name_a_benchmark_imports_exists(stale)

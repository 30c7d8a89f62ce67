"""Docstring examples are tests: pytest collects them from every library package (``--doctest-modules`` over
``testpaths`` in pyproject.toml; the root conftest.py runs them from the checkout). This file checks that
the collection stays switched on, that every package keeps examples, and that the modules whose docstrings
promise a runnable example still carry one. ``bench/`` is not collected; its one example runs here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("policies", "provenance", "media", "detectors", "generator", "governance")
#: Modules whose examples the docs point a reader at (they were listed one by one before collection).
DOCUMENTED = (
    "detectors.errors", "detectors.faces", "detectors.enroll", "detectors.index", "detectors.insightface",
    "detectors.scan", "detectors.headpose", "detectors.liveness", "detectors.pose",
    "media.formats", "media.limits", "media.image", "media.video",
    "policies.characters", "policies.consent", "policies.decisions", "policies.names",
    "provenance.commitments", "provenance.fingerprint", "provenance.merkle", "provenance.watermark",
    "generator.base", "generator.procedural", "governance.authz",
)


def _examples(module_name: str) -> int:
    module = importlib.import_module(module_name)
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(module))


def test_pytest_collects_the_libraries_docstring_examples() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert set(LIBRARIES) <= set(options["testpaths"])


@pytest.mark.parametrize("package", LIBRARIES)
def test_every_package_has_examples(package: str) -> None:
    root = importlib.import_module(package)
    names = [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")
             if not m.name.startswith("governance.migrations") and not m.name.endswith(".__main__")]
    with_examples = [n for n in names if _examples(n)]
    assert with_examples, f"no module of {package}/ has a docstring example"


@pytest.mark.parametrize("module", DOCUMENTED)
def test_documented_modules_keep_their_example(module: str) -> None:
    assert _examples(module) > 0, f"{module} lost its docstring example"


def test_bench_inputs_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(importlib.import_module("bench.inputs"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

"""The examples in the module docstrings run (from the repository root, as the README says)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["detectors.errors", "detectors.faces", "detectors.enroll", "detectors.index",
                                    "detectors.insightface", "detectors.scan", "detectors.headpose",
                                    "detectors.liveness", "detectors.pose", "detectors.template",
                                    "detectors.backends", "detectors.onnx"])
def test_docstring_examples(module, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

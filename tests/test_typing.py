"""``mypy --strict`` holds on the libraries that promise it (issue 18): ``policies/``, ``provenance/`` and
``media/``. The rest is checked by ``make lint`` with the project's default settings (pyproject's [tool.mypy])."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STRICT = ("policies", "provenance", "media")


def test_the_strict_libraries_type_check() -> None:
    api = pytest.importorskip("mypy.api")
    out, err, status = api.run([
        "--strict", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
        "--no-error-summary", "--hide-error-context", *(str(ROOT / p) for p in STRICT),
    ])
    assert status == 0, f"mypy --strict {' '.join(STRICT)} found:\n{out}{err}"

"""Collection settings for the whole checkout: the libraries' docstring examples are collected as tests
(``--doctest-modules`` with the packages in ``testpaths``, pyproject.toml) and run from the repository
root, as the README tells a reader to run them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Alembic's env.py and revision scripts run only inside alembic (env.py reads ``context.config`` on import).
collect_ignore = ["governance/migrations"]


@pytest.fixture(autouse=True)
def _doctests_run_from_the_root(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Docstring examples name files relative to the checkout (``../shared/testdata/...``)."""
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.chdir(ROOT)
    yield

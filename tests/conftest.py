"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real media in ../shared/testdata (read-only: copy before changing)."""
    if not TESTDATA.is_dir():
        pytest.fail(f"test data not found at {TESTDATA}: the shared/ folder must sit beside the checkout")
    return TESTDATA


@pytest.fixture(scope="session")
def faces_dir(testdata: Path) -> Path:
    return testdata / "faces"


@pytest.fixture(scope="session")
def c2pa_dir(testdata: Path) -> Path:
    return testdata / "c2pa"

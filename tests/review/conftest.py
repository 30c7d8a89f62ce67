"""The review's tests reuse the functional tests' fixtures (``api``, ``make_api``, ``liveness_videos``): that
conftest is loaded by path (tests/ is not a package) and its fixtures re-exported here. ``media`` and
:func:`one_line_exit` serve the reviews of ``consentgate verify --url`` (s22, s25)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("consentgate_functional_conftest_for_review",
                                               Path(__file__).resolve().parents[1] / "functional" / "conftest.py")
assert _spec is not None and _spec.loader is not None
functional = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(functional)

api = functional.api
make_api = functional.make_api
liveness_videos = functional.liveness_videos


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A small file for ``consentgate verify --url`` to send (a JPEG's first bytes: what the service makes of it
    does not matter to a client test)."""
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    return path


def one_line_exit(argv: list[str]) -> str:
    """The one line ``consentgate`` exits with for ``argv`` (a SystemExit whose code is that line: exit 1);
    asserts it is one printable line (no line break, no terminal control bytes)."""
    from governance.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    msg = e.value.code
    assert isinstance(msg, str), f"not a one-line exit: {msg!r}"
    assert msg.isprintable(), f"not one printable line: {msg!r}"
    return msg

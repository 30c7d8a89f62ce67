"""The review's tests reuse the functional tests' fixtures (``api``, ``make_api``, ``liveness_videos``): that
conftest is loaded by path (tests/ is not a package) and its fixtures re-exported here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("consentgate_functional_conftest_for_review",
                                               Path(__file__).resolve().parents[1] / "functional" / "conftest.py")
assert _spec is not None and _spec.loader is not None
functional = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(functional)

api = functional.api
make_api = functional.make_api
liveness_videos = functional.liveness_videos

"""Heavy libraries load when a backend first needs them, never when the service starts (house style, habit 12):
``import governance.app`` and ``create_app`` with the embedded defaults leave OpenCV, torch, onnxruntime, dlib
and diffusers unloaded. Each check runs in a fresh interpreter, since this one has loaded them all by now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("cv2", "torch", "onnxruntime", "dlib", "_dlib_pybind11", "diffusers", "face_recognition")

_REPORT = "import json, sys; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"


def _loaded_after(code: str) -> list[str]:
    """The :data:`HEAVY` modules a fresh interpreter holds after running ``code`` from the repository root."""
    script = f"{code}\n{_REPORT.format(heavy=HEAVY)}"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_app_loads_no_heavy_library() -> None:
    assert _loaded_after("import governance.app") == []


def test_starting_the_service_loads_no_heavy_library(tmp_path: Path) -> None:
    start = (f"from governance.app import create_app\n"
             f"app = create_app({{'data_dir': {str(tmp_path / 'var')!r}, 'worker': 'thread'}})\n"
             f"app.extensions['consentgate'].close()")
    assert _loaded_after(start) == []


def test_the_check_sees_a_heavy_import() -> None:
    assert _loaded_after("import cv2") == ["cv2"]

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


#: Tables and libraries a verification never reads: ``consentgate verify FILE`` on a data dir must not import them
#: (issue 12, docs/performance.md section 4b: what a one-shot process imports is most of its time).
NOT_FOR_VERIFYING = ("governance.models", "governance.characters.models", "governance.restrictions.models",
                     "governance.guardians.models", "governance.notices.models", "governance.pages.models",
                     "governance.remix.models", "alembic", "flask", "prometheus_client")


def test_verifying_on_the_data_dir_imports_only_what_a_verification_reads(tmp_path: Path, c2pa_dir: Path) -> None:
    from governance.cli import main

    var = str(tmp_path / "var")
    assert main(["--data-dir", var, "init"]) == 0  # migrated here, so the command below has nothing to create
    code = ("import json, sys\n"
            "from governance.cli import main\n"
            f"rc = main(['--data-dir', {var!r}, 'verify', {str(c2pa_dir / 'video1.mp4')!r}, '--json'])\n"
            f"print(json.dumps([rc, sorted(m for m in {NOT_FOR_VERIFYING!r} if m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[: done.stdout.rindex("\n[")])
    rc, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert rc == 0 and report["c2pa"]["state"] == "Valid" and report["watermark"]["checked"] is True
    assert report["fingerprint"]["checked"] is True  # the records were read: the lookup ran against the database
    assert loaded == []


def test_the_check_sees_a_table_module_loaded() -> None:
    assert _loaded_after("import governance.models") == []  # HEAVY only: the helper above looks for libraries
    code = (f"import json, sys, governance.models\n"
            f"print(json.dumps(sorted(m for m in {NOT_FOR_VERIFYING!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "governance.characters.models" in loaded and "governance.pages.models" in loaded

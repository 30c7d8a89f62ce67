"""Browser tests: Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright for Python,
against the real service on a free port (real components, SQLite in a temporary folder). Playwright's own browser
downloads are never used. Every page a story reaches is checked with axe-core (bundled by axe-playwright-python):
no serious or critical violation. With ``CONSENTGATE_SCREENSHOTS=1`` each page is also photographed at phone
(390x844) and desktop (1280x800) widths into ``docs/pages/`` (``make screenshots``)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("CONSENTGATE_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT.parent / "shared" / "testdata"
SHOTS = ROOT / "docs" / "pages"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
#: The poses the fake camera performs: the story sets its challenge to them, as tests/functional's enroll_live does.
LIVE_POSES = ("left", "up", "right")


def require_chromium() -> None:
    """Skip the calling test module, with one line saying why, when Debian's chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (.ci/run installs it)",
                    allow_module_level=True)


@dataclass
class Server:
    """The service, running in this process on a free port (so a test can reach its database)."""

    app: Any
    url: str
    _stop: Callable[[], None] = field(repr=False)

    @property
    def rt(self) -> Any:
        return self.app.extensions["consentgate"]

    def account(self, name: str, role: str = "creator") -> str:
        from governance.accounts.services import create_account
        from governance.db import unit_of_work

        with unit_of_work(self.rt.engine) as session:
            _, token = create_account(session, name, role)
        return token

    def api(self, method: str, path: str, token: str, **kw: Any) -> Any:
        return self.app.test_client().open(path, method=method, headers={"Authorization": f"Bearer {token}"}, **kw)


@pytest.fixture(scope="module")
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    from werkzeug.serving import make_server as werkzeug_server

    from governance.app import create_app

    servers: list[Server] = []

    def make(**config: Any) -> Server:
        data = tmp_path_factory.mktemp("var")
        app = create_app({"data_dir": data, "worker": "thread", "max_upload_bytes": 16 * 1024 * 1024, **config})
        httpd = werkzeug_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, name="pages-server", daemon=True)
        thread.start()

        def stop() -> None:
            httpd.shutdown()
            thread.join(10)
            httpd.server_close()
            app.extensions["consentgate"].close()

        servers.append(Server(app, f"http://127.0.0.1:{httpd.server_port}", stop))
        return servers[-1]

    yield make
    for s in servers:
        s._stop()


@pytest.fixture(scope="module")
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()


def write_y4m(path: Path, frames: Any, fps: int = 20) -> None:
    """``frames`` (T, H, W, 3) RGB uint8 as a YUV4MPEG2 file (4:2:0), what Chromium's fake camera plays."""
    import cv2

    t, h, w, _ = frames.shape
    with path.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())


@pytest.fixture(scope="session")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A selfie of a real photo's face performing :data:`LIVE_POSES`, made by the live check's test helper."""
    import importlib.util

    import numpy as np

    from media.video import load_image

    spec = importlib.util.spec_from_file_location("pages_challenge_video",
                                                  ROOT / "tests" / "detectors" / "challenge_video.py")
    assert spec is not None and spec.loader is not None
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    frames = helper.challenge_frames(load_image(TESTDATA / "faces" / "obama.jpg"), LIVE_POSES)
    # facing the camera a second before and two after: the camera starts when the page opens it and loops, so the
    # page's recording (a second facing it, the poses, a second back) holds the whole sequence once
    frames = np.concatenate([np.repeat(frames[:1], 20, axis=0), frames, np.repeat(frames[-1:], 40, axis=0)])
    path = tmp_path_factory.mktemp("camera") / "selfie.y4m"
    write_y4m(path, frames)
    return path


@pytest.fixture(scope="session")
def browser(camera_file: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_file}"])
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def make(server: Server) -> Any:
        ctx = browser.new_context(viewport=DESKTOP, base_url=server.url, accept_downloads=True)
        ctx.grant_permissions(["camera"], origin=server.url)
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page: Any, token: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Account token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.get_by_text("Signed in as").is_visible()


def start_live_check(page: Any, server: Any) -> str:
    """Press "Start the live check" on ``page`` (the face or notice page), wait for the poses, and set the drawn
    challenge's poses to :data:`LIVE_POSES`, which the fake camera performs. The challenge's id (a new one: on a
    page that already showed a challenge, the old poses stay listed until the new challenge comes)."""
    from governance.db import unit_of_work
    from governance.likenesses.models import Challenge

    before = page.locator("#live").get_attribute("data-challenge")
    page.get_by_role("button", name="Start the live check").click()
    page.wait_for_function("""before => {
        const now = document.getElementById("live").dataset.challenge;
        return now && now !== before && document.querySelector("#live-poses li") !== null;
    }""", arg=before)
    challenge = page.locator("#live").get_attribute("data-challenge")
    with unit_of_work(server.rt.engine) as s:
        row = s.get(Challenge, challenge)
        assert row is not None, challenge
        row.poses = list(LIVE_POSES)
    return str(challenge)


def record_live_check(page: Any, moved_on: str = "done=") -> None:
    """Press "Record" and wait until the page has moved on (``moved_on`` in its address's query: a page whose
    address already holds ``done=`` names more of it) or says the check did not pass (the test then reads which)."""
    page.get_by_role("button", name="Record").click()
    page.wait_for_function("moved => location.search.includes(moved) || "
                           "document.getElementById('live-status').textContent.includes('did not pass')",
                           arg=moved_on, timeout=60_000)


def check_page(page: Any, name: str) -> None:
    """axe-core on the page as it stands: no serious or critical violation (the page's name is in the message);
    with ``CONSENTGATE_SCREENSHOTS=1``, the page at phone and desktop widths to ``docs/pages/<name>-*.png``."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: {bad}"
    if os.environ.get("CONSENTGATE_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size
        for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(viewport)
            page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(size)

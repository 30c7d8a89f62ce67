"""The live check's recorder (``governance/pages/static/live.js``) when something fails under it, in Chromium.

Each failure is put into the browser APIs the page uses by a script Playwright adds before the page's own
(``add_init_script``): the first ``MediaRecorder`` the page makes throws from its constructor or from ``start``,
or fires ``error`` half a second into the recording and stops (as a browser whose encoder fails does), or its
camera track ends (the camera unplugged, or taken by another app); the network fails under a request through
``page.route``. Later recordings on the same page are Chromium's own. The same script keeps every stream the page
opens, so a test can see whether the page released the camera. Each test checks what the person reads, that
nothing reached the service (the challenge is not spent, no likeness enrolled), that the camera is off, and that
Start then draws a new challenge, whose recording passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import check_page, record_live_check, require_chromium, sign_in, start_live_check

require_chromium()

#: How long a test waits for the page to say what happened (a wait, not a timed assertion: the page answers in
#: about half a second, or a few seconds for a whole recording, on an idle machine).
SAY_MS = 30_000

#: Before the page's scripts run: ``window.__streams`` keeps each stream ``getUserMedia`` gives the page, and the
#: first recorder the page makes fails as the mode says (None: none fails); ``window.__injected`` says it did.
_FAIL_ONCE = """(mode => {
  window.__streams = [];
  window.__injected = null;
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async constraints => {
    const stream = await gum(constraints);
    window.__streams.push(stream);
    return stream;
  };
  const Real = window.MediaRecorder;
  let armed = mode !== null;
  const take = wanted => {
    if (!armed || !wanted.includes(mode)) { return false; }
    armed = false;
    window.__injected = mode;
    return true;
  };
  class Recorder extends Real {
    constructor(stream, options) {
      if (take(["construct"])) { throw new DOMException("The encoder could not be made", "NotSupportedError"); }
      super(stream, options);
      this.camera = stream;
    }
    start(timeslice) {
      if (take(["start"])) { throw new DOMException("The encoder could not be started", "NotSupportedError"); }
      super.start(timeslice);
      if (!take(["error", "error-unexplained", "ended"])) { return; }
      setTimeout(() => {
        if (mode === "ended") {  // what an unplugged camera does: its track ends
          for (const t of this.camera.getTracks()) { t.stop(); t.dispatchEvent(new Event("ended")); }
          return;
        }
        this.dispatchEvent(mode === "error"
          ? new ErrorEvent("error", {error: new DOMException("The encoder failed", "EncodingError"),
                                     message: "The encoder failed"})
          : new Event("error"));
        Real.prototype.stop.call(this);  // a recorder that fails stops: its last data, then `stop`
      }, 500);
    }
  }
  window.MediaRecorder = Recorder;
})(%s);"""

AGAIN = " Nothing was sent. Press Start for a new challenge."
NETWORK = "the network failed (the service could not be reached). Check your connection, then press Start"


def _open_face_page(page: Any, server: Any, name: str, mode: str | None) -> list[str]:
    """Sign ``name`` in, add the failure ``mode`` and open "My face"; the list the page's uploads are added to."""
    sign_in(page, server.account(name))
    page.add_init_script(_FAIL_ONCE % json.dumps(mode))
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and
            r.url.endswith("/me/face/enroll") else None)
    page.goto("/me/face")
    return uploads


def _says(page: Any, text: str) -> None:
    """Wait until the live check's status says ``text`` exactly (the assertion names what it said instead)."""
    from playwright.sync_api import expect

    expect(page.locator("#live-status")).to_have_text(text, timeout=SAY_MS)


def _unspent(server: Any, name: str, challenge: str) -> None:
    """The service never received a recording: ``challenge`` is not used and ``name`` has no likeness."""
    from sqlmodel import func, select

    from governance.accounts.models import Account
    from governance.likenesses.models import Challenge, Likeness

    with server.rt.session() as s:
        row = s.get(Challenge, challenge)
        assert row is not None and row.used_at is None and row.outcome is None, row
        account = s.exec(select(Account).where(Account.name == name)).one()
        assert s.exec(select(func.count()).select_from(Likeness).where(Likeness.owner_id == account.id)).one() == 0


def _camera_released_and_start_ready(page: Any) -> None:
    """The page opened the camera and stopped every track of it; the preview is hidden; Start can be pressed and
    Record waits for a new challenge."""
    states = page.evaluate("window.__streams.map(s => s.getTracks().map(t => t.readyState))")
    assert states and all(track == ["ended"] for track in states), states
    assert page.locator("#live-preview").is_hidden()
    assert page.get_by_role("button", name="Start the live check").is_enabled()
    assert page.get_by_role("button", name="Record").is_hidden()


def _passes_with_a_new_challenge(page: Any, server: Any) -> None:
    """Start draws a new challenge (not ``spent``: start_live_check waits for a new one) and its recording passes
    (the page moves on, enrolled)."""
    start_live_check(page, server)
    record_live_check(page)
    assert "done=enrolled" in page.url, page.locator("#live-status").inner_text()
    assert page.locator('[data-verification="live"]').is_visible()


@pytest.mark.parametrize(("mode", "said"), [
    ("error", "The recording stopped: the browser's recorder failed (The encoder failed)." + AGAIN),
    ("error-unexplained", "The recording stopped: the browser's recorder failed." + AGAIN),
    ("ended", "The recording stopped: the camera was turned off, unplugged or taken by another app." + AGAIN),
    ("construct", "The recording could not start: the browser's recorder failed (The encoder could not be made)."
     + AGAIN),
    ("start", "The recording could not start: the browser's recorder failed (The encoder could not be started)."
     + AGAIN),
], ids=lambda v: v if v in ("error", "error-unexplained", "ended", "construct", "start") else "")
def test_a_recording_that_fails_is_not_sent_and_start_draws_a_new_challenge(server, new_page, mode: str,
                                                                            said: str) -> None:
    page = new_page(server)
    name = f"recfail-{mode}"
    uploads = _open_face_page(page, server, name, mode)
    challenge = start_live_check(page, server)
    page.get_by_role("button", name="Record").click()
    _says(page, said)
    assert page.evaluate("window.__injected") == mode
    _camera_released_and_start_ready(page)
    assert page.locator("#live-poses li.now").count() == 0  # no pose left highlighted
    assert uploads == []
    _unspent(server, name, challenge)
    if mode == "error":
        check_page(page, "my-face-recording-failed")
    _passes_with_a_new_challenge(page, server)
    assert len(uploads) == 1


def test_a_challenge_the_network_fails_to_fetch_is_said_and_start_tries_again(server, new_page) -> None:
    from sqlmodel import func, select

    from governance.likenesses.models import Challenge

    page = new_page(server)
    _open_face_page(page, server, "netfail-challenge", None)
    page.route("**/me/face/challenge", lambda route: route.abort("internetdisconnected"))
    with server.rt.session() as s:
        before = s.exec(select(func.count()).select_from(Challenge)).one()
    page.get_by_role("button", name="Start the live check").click()
    _says(page, "The live check could not start: " + NETWORK + " again.")
    assert page.get_by_role("button", name="Start the live check").is_enabled()
    assert page.get_by_role("button", name="Record").is_hidden()
    assert page.locator("#live-poses li").count() == 0
    with server.rt.session() as s:
        assert s.exec(select(func.count()).select_from(Challenge)).one() == before
    page.unroute("**/me/face/challenge")
    start_live_check(page, server)
    assert page.get_by_role("button", name="Record").is_visible()


def test_a_recording_the_network_fails_to_send_is_said_and_start_draws_a_new_challenge(server, new_page) -> None:
    page = new_page(server)
    name = "netfail-upload"
    uploads = _open_face_page(page, server, name, None)
    page.route("**/me/face/enroll", lambda route: route.abort("internetdisconnected"))
    challenge = start_live_check(page, server)
    page.get_by_role("button", name="Record").click()
    _says(page, "Your recording could not be sent: " + NETWORK + " for a new challenge.")
    assert len(uploads) == 1  # the page tried, and the network failed under it
    _camera_released_and_start_ready(page)
    _unspent(server, name, challenge)
    page.unroute("**/me/face/enroll")
    _passes_with_a_new_challenge(page, server)
    assert len(uploads) == 2

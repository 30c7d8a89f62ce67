"""The live check's recorder (``governance/pages/static/live.js``) with each kind of browser it meets, in Chromium.

The page records the first of its types that ``MediaRecorder.isTypeSupported`` admits (MP4/H.264 first in Chromium,
docs/performance.md section 6). To meet the other kinds of browser, a script Playwright adds before the page's own
(``add_init_script``) narrows the types Chromium's ``isTypeSupported`` admits, as a browser that records only WebM
(Firefox), or MP4 without H.264, or none of the page's types would; the page is unchanged and the recording is
Chromium's own encoder's. What arrived (the multipart part's name, declared type and bytes) is copied on its way in
by a WSGI wrapper around the service, which passes it on as it came (Chromium's DevTools protocol does not hand out
a request body holding a Blob); what the service read is in the audit event of the pass (``live_check.media``,
sniffed from the bytes)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from .conftest import check_page, record_live_check, require_chromium, sign_in, start_live_check

require_chromium()


def _admit_only(page: Any, types: list[str] | None) -> None:
    """Before the page's scripts run: ``isTypeSupported`` admits only ``types`` (those of them Chromium records);
    with None the browser has no ``MediaRecorder`` at all."""
    if types is None:
        page.add_init_script("delete window.MediaRecorder;")
        return
    page.add_init_script(f"""(admit => {{
        const real = MediaRecorder.isTypeSupported.bind(MediaRecorder);
        MediaRecorder.isTypeSupported = t => admit.includes(t) && real(t);
    }})({json.dumps(types)});""")


class _Arrivals:
    """A WSGI wrapper that keeps a copy of each POST body sent to a path ending in ``suffix``, then hands the
    request on unchanged."""

    def __init__(self, app: Callable[..., Iterable[bytes]], suffix: str) -> None:
        self.app, self.suffix = app, suffix
        self.bodies: list[tuple[str, bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO", "").endswith(self.suffix):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            self.bodies.append((environ["CONTENT_TYPE"], body))
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def arrivals(server) -> _Arrivals:
    """The live check's uploads as the service received them (the face page's ``/me/face/enroll``)."""
    wrapper = _Arrivals(server.app.wsgi_app, "/me/face/enroll")
    server.app.wsgi_app = wrapper
    return wrapper


def _media_part(content_type: str, body: bytes) -> tuple[str, str, bytes]:
    """The uploaded file's name, declared type and bytes, parsed from a multipart body."""
    from werkzeug.formparser import parse_form_data

    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    _, form, files = parse_form_data(environ)
    assert set(form) == {"csrf_token", "challenge", "mirrored"} and list(files) == ["media"], (list(form), list(files))
    media = files["media"]
    try:
        return media.filename or "", media.mimetype, media.read()
    finally:
        media.close()  # a large part is spooled to a temporary file


@pytest.mark.parametrize(("admit", "picked", "name", "container", "codec"), [
    (None, "video/mp4;codecs=avc1", "selfie.mp4", "video/mp4", "h264"),  # Chromium as it is
    (["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"], "video/webm;codecs=vp9", "selfie.webm",
     "video/webm", "vp9"),  # a browser that records WebM only (Firefox)
    (["video/webm;codecs=vp8", "video/webm"], "video/webm;codecs=vp8", "selfie.webm", "video/webm", "vp8"),
    (["video/mp4"], "video/mp4", "selfie.mp4", "video/mp4", "vp9"),  # MP4 without H.264: Chromium writes VP9 in it
], ids=["mp4-h264", "webm-vp9", "webm-vp8", "mp4-vp9"])
def test_the_live_check_passes_with_the_container_the_browser_records(server, arrivals, new_page,
                                                                      admit: list[str] | None, picked: str, name: str,
                                                                      container: str, codec: str) -> None:
    from sqlmodel import select

    from governance.bookkeeping import AuditEvent
    from media.formats import HEAD_BYTES, sniff
    from media.video import probe

    page = new_page(server)
    sign_in(page, server.account(f"rec-{name.split('.')[1]}-{codec}"))
    page.goto("/me/face")
    if admit is not None:
        supported = page.evaluate("types => types.every(t => MediaRecorder.isTypeSupported(t))", [picked])
        if not supported:
            pytest.skip(f"Chromium {page.context.browser.version} cannot record {picked} "
                        "(MediaRecorder.isTypeSupported)")
        _admit_only(page, admit)
        page.reload()
    assert page.locator("#live").get_attribute("data-recorder") == picked
    challenge = start_live_check(page, server)
    already = len(arrivals.bodies)
    record_live_check(page)
    assert "done=enrolled" in page.url, page.locator("#live-status").inner_text()
    assert page.locator('[data-verification="live"]').is_visible()
    [(content_type, body)] = arrivals.bodies[already:]
    filename, mimetype, data = _media_part(content_type, body)
    assert (filename, mimetype.split(";")[0]) == (name, container)
    fmt = sniff(data[:HEAD_BYTES])
    assert fmt is not None and fmt.mime == container, data[:16]
    assert probe(data).codec == codec
    with server.rt.session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.tag == "likeness:verify")).all()
    [passed] = [e.data for e in events if e.data["challenge"] == challenge]
    assert passed["live_check"]["media"] == container, passed["live_check"]


@pytest.mark.parametrize("admit", [None, ["video/x-matroska"]], ids=["no-recorder", "no-type-the-service-reads"])
def test_a_browser_that_cannot_record_what_the_service_reads_is_told_so_before_a_challenge(
        server, new_page, admit: list[str] | None) -> None:
    from sqlmodel import func, select

    from governance.likenesses.models import Challenge

    page = new_page(server)
    sign_in(page, server.account(f"norec-{'none' if admit is None else 'mkv'}"))
    _admit_only(page, admit)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and "/me/face/" in r.url else None)
    with server.rt.session() as s:
        before = s.exec(select(func.count()).select_from(Challenge)).one()
    page.goto("/me/face")
    live = page.locator("#live")
    assert live.get_attribute("data-recorder") == "none"
    assert page.locator("#live-status").inner_text() == ("This browser cannot record video here; enroll with photos or "
                                                         "a video file below instead.")
    assert page.get_by_role("button", name="Start the live check").is_disabled()
    assert page.get_by_role("button", name="Record").is_hidden()
    assert page.get_by_role("heading", name="Photos or a video (protects only)").is_visible()  # the way that remains
    check_page(page, "my-face-no-recorder")
    with server.rt.session() as s:
        assert s.exec(select(func.count()).select_from(Challenge)).one() == before
    assert uploads == []

"""Files from the real world, over HTTP: every file of ../shared/testdata/field-reports (but
disguised-names.json) gets the answer its README states, and the hostile inputs it says to build are
refused quickly, naming the limit (docs/limits.md)."""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.inputs import many_frames_mp4, many_tracks_mp4, no_duration_webm, png_bomb


@pytest.fixture(scope="module")
def field(testdata: Path) -> Path:
    return testdata / "field-reports"


def problem(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    body: dict = r.get_json()
    return body


# --- 2. every format a phone or a browser makes ----------------------------------------------------------

def test_a_12mp_avif_photo_is_verified_as_an_image(api, field):
    r = api.verify((field / "photo-12mp.avif").read_bytes(), "photo.avif")
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    assert (report["media_type"], report["format"]) == ("image", "image/avif")
    assert report["c2pa"]["state"] == "absent"
    assert report["watermark"] == {"checked": True, "found": False, "keys_tried": 1}
    assert report["fingerprint"]["applies"] is False and "still image" in report["fingerprint"]["reason"]
    assert "video" not in report["summary"]


def test_the_sideways_selfie_gets_the_answer_of_its_upright_twin(api, field, faces_dir):
    alice = api.account("alice")
    answers = []
    for name in ("selfie-portrait-upright.mp4", "selfie-portrait-rotated90.mp4"):
        body = problem(api.multipart("/v1/likenesses", alice, [(name, (field / name).read_bytes())]), 422)
        answers.append(body["reason"])
    assert answers == ["single_pose", "single_pose"]  # the face is found upright in both; it never turns
    # next to a photo, the video's frames count (sideways, their faces were not found and they were dropped)
    photo = ("obama.jpg", (faces_dir / "obama.jpg").read_bytes())
    counts = [api.multipart("/v1/likenesses", alice, [photo, (n, (field / n).read_bytes())]).get_json()["embeddings"]
              for n in ("selfie-portrait-upright.mp4", "selfie-portrait-rotated90.mp4")]
    assert counts[0] == counts[1] > 1


def test_a_16_bit_grayscale_portrait_enrolls_like_its_8_bit_version(api, field):
    from detectors.enroll import enroll
    from governance.uploads import decode_image

    data = (field / "face-gray16.png").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        eight = Image.fromarray((np.asarray(im) >> 8).astype(np.uint8))
    buf = io.BytesIO()
    eight.save(buf, "PNG")
    a, b = decode_image(data), decode_image(buf.getvalue())
    assert np.array_equal(a, b)
    ta, tb = enroll([a], api.rt.detectors.face_backend), enroll([b], api.rt.detectors.face_backend)
    assert np.allclose(ta.embeddings, tb.embeddings)
    assert api.enroll(api.account("gray"), field / "face-gray16.png")["embeddings"] == 1


def _signed(api, tmp_path: Path) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """TIFF, animated GIF, animated WebP and WAV, signed with the service's own C2PA chain."""
    from provenance.c2pa_seal import ManifestSpec, seal_video

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    files: dict[str, bytes] = {}
    for fmt, opts in (("TIFF", {}), ("GIF", {"save_all": True, "append_images": [img.rotate(90)]}),
                      ("WEBP", {"save_all": True, "append_images": [img.rotate(90)]})):
        buf = io.BytesIO()
        img.save(buf, fmt, **opts)
        files[fmt.lower()] = buf.getvalue()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(8000, "<i2").tobytes())
    files["wav"] = buf.getvalue()
    spec = ManifestSpec(title="probe", generator_name="consentgate-test", generator_version="1",
                        learned_weights=False, governance={"content_id": "00c0ffee00c0ffee"})
    for name, data in files.items():
        (tmp_path / f"in.{name}").write_bytes(data)
        seal_video(tmp_path / f"in.{name}", tmp_path / f"out.{name}", spec, api.rt.keys.material)
        files[name] = (tmp_path / f"out.{name}").read_bytes()
    return files


def test_c2pa_is_reported_for_every_format_the_reader_supports(api, tmp_path):
    for name, data in _signed(api, tmp_path).items():
        r = api.verify(data, f"file.{name}")
        assert r.status_code == 200, (name, r.get_json())
        report = r.get_json()
        assert report["c2pa"]["state"] == "Trusted", name
        assert report["c2pa"]["governance"]["content_id"] == "00c0ffee00c0ffee"
        if name == "wav":
            assert report["media_type"] == "audio"
            for check in ("watermark", "fingerprint"):
                assert report[check]["applies"] is False and "audio" in report[check]["reason"]
        else:
            assert report["media_type"] == "image" and report["watermark"]["checked"] is True
            assert report["fingerprint"]["applies"] is False


# --- 3. a manifest that cannot be read is a finding ------------------------------------------------------

def test_a_remote_manifest_is_reported_not_fetched(api, field):
    r = api.verify((field / "c2pa-remote-manifest.jpg").read_bytes(), "cloud.jpg")
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    c = report["c2pa"]
    assert c["state"] == "remote" and c["failures"] == ["manifest.inaccessible"]
    assert c["remote_url"].startswith("https://cai-manifests.adobe.com/manifests/")
    assert report["watermark"]["checked"] is True  # the other checks still run
    assert "kept remotely (not fetched)" in report["summary"]


def test_a_manifest_the_reader_cannot_process_is_invalid_with_its_reason(api, field):
    r = api.verify((field / "c2pa-unknown-alg.jpg").read_bytes(), "no_alg.jpg")
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    c = report["c2pa"]
    assert (c["state"], c["failures"], c["reader_error"]) == ("Invalid", ["manifest.unreadable"], "Other")
    assert "unknown algorithm" in c["detail"]
    assert report["watermark"]["checked"] is True


# --- 1. limits enforced while decoding ------------------------------------------------------------------

HOSTILE = {"bomb.png": (png_bomb, "image_pixels"), "frames.mp4": (many_frames_mp4, "frames"),
           "tracks.mp4": (many_tracks_mp4, "tracks"), "no-duration.webm": (no_duration_webm, "seconds")}


@pytest.fixture(scope="module")
def hostile() -> dict[str, bytes]:
    return {name: make() for name, (make, _) in HOSTILE.items()}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_inputs_are_refused_naming_the_limit(make_api, hostile, name):
    """How fast, and with how little memory, is measured by ``python -m bench limits`` (docs/limits.md)."""
    api = make_api(max_upload_bytes=4 * 1024 * 1024)
    body = problem(api.verify(hostile[name], name), 422)
    assert body["limit"] == HOSTILE[name][1] and f"({body['limit']})" in body["detail"]
    assert body["type"].endswith("/limit-exceeded")
    alice = api.account("alice")
    body = problem(api.multipart("/v1/likenesses", alice, [(name, hostile[name])]), 422)
    assert body["limit"] == HOSTILE[name][1]


def test_enrollment_decodes_at_most_its_seconds(make_api, hostile):
    api = make_api(max_upload_bytes=4 * 1024 * 1024)
    body = problem(api.multipart("/v1/likenesses", api.account("alice"), [("v.webm", hostile["no-duration.webm"])]),
                   422)
    assert body["limit"] == "seconds" and body["allowed"] == 60.0 and "at most 60 s" in body["detail"]
    photos = [("p.png", png_bomb(64))] * 9
    assert problem(api.multipart("/v1/likenesses", api.account("bob"), photos), 422)["limit"] == "photos"


def test_expensive_work_takes_a_slot_or_gets_503_at_once(make_api, c2pa_dir):
    api = make_api(expensive_slots=1)
    data = (c2pa_dir / "no_manifest.jpg").read_bytes()
    with api.rt.throttles.slots.take("a test holding the only slot"):
        started = time.perf_counter()
        r = api.verify(data, "a.jpg")
        body = problem(r, 503)
        assert time.perf_counter() - started < 1.0 and r.headers["Retry-After"] == "1"
        assert body["type"].endswith("/busy")
        assert api.call("GET", "/v1/log").status_code == 200  # cheap endpoints are not held up
        assert problem(api.multipart("/v1/likenesses", api.account("alice"), [("a.jpg", data)]), 503)
    assert api.verify(data, "a.jpg").status_code == 200  # the slot is free again


def test_the_verify_rate_limit_counts_decoded_pixels(make_api, faces_dir):
    api = make_api(verify_megapixels_per_minute=20)
    clip = (faces_dir / "short_hamilton_clip.mp4").read_bytes()  # 275 frames of 640x360: ~63 megapixels
    assert api.verify(clip).status_code == 200
    r = api.verify(clip)
    body = problem(r, 429)
    assert "20 decoded megapixels a minute" in body["detail"] and int(r.headers["Retry-After"]) >= 60
    token = api.account("reg", "regulator")  # another client has its own allowance
    assert api.multipart("/v1/verify", token, [("a.mp4", clip)]).status_code == 200


def test_the_cli_decodes_under_the_same_limits(tmp_path, hostile, capsys):
    from governance.cli import main

    (tmp_path / "bomb.png").write_bytes(hostile["bomb.png"])
    (tmp_path / "long.webm").write_bytes(hostile["no-duration.webm"])
    var = str(tmp_path / "var")
    assert main(["--data-dir", var, "init"]) == 0  # with the service's keys the watermark is read: pixels decode
    assert main(["--data-dir", var, "verify", str(tmp_path / "bomb.png")]) == 1
    assert "(image_pixels)" in capsys.readouterr().err
    assert main(["--data-dir", var, "verify", str(tmp_path / "long.webm")]) == 1
    assert "(seconds)" in capsys.readouterr().err
    (tmp_path / "frames.mp4").write_bytes(hostile["frames.mp4"])  # scan allows 600 s: the 400 s WebM passes
    with pytest.raises(SystemExit, match="too_long"):
        main(["--data-dir", var, "scan", str(tmp_path / "frames.mp4")])
    (tmp_path / "tracks.mp4").write_bytes(hostile["tracks.mp4"])
    with pytest.raises(SystemExit, match="too_large"):
        main(["--data-dir", var, "scan", str(tmp_path / "tracks.mp4")])

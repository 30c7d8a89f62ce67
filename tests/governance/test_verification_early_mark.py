"""Verification's read of the mark since issue 12 (``read_upload(..., watermark_keys=...)``, a
:class:`provenance.watermark.MarkReader`): decoding stops at the first early check where a mark verifies unless the
fingerprint needs every frame, and the report says what the early read found (8 frames, the key that made it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.verification.reading import read_upload
from governance.verification.services import verify_bytes
from media.limits import Meter
from media.video import Clip, write_video
from provenance.watermark import EARLY_CHECKS, WatermarkKey, embed
from tests.provenance.test_watermark import PAYLOAD, synthetic_clip

KEY = WatermarkKey(b"consentgate-test-watermark-key-1")
OTHER = WatermarkKey(b"consentgate-test-watermark-key-2")


@pytest.fixture(scope="module")
def marked_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path: Path = tmp_path_factory.mktemp("early") / "marked.mp4"
    write_video(path, Clip(frames=embed(synthetic_clip(size=256, frames=72, seed=3), PAYLOAD, KEY), fps=24.0), crf=23)
    return path.read_bytes()


def test_the_mark_alone_stops_the_decode_at_the_first_check(marked_mp4: bytes) -> None:
    meter = Meter()
    read = read_upload(marked_mp4, "video", watermark_keys=[OTHER, KEY], fingerprint=False, meter=meter)
    found, key = read.watermark()
    assert found.payload == PAYLOAD and found.frames_used == EARLY_CHECKS[0] and key is KEY
    assert meter.frames <= EARLY_CHECKS[0] + 9  # the prefetch decodes at most 8 ahead (and one it was putting)


def test_the_fingerprint_still_reads_every_frame(marked_mp4: bytes) -> None:
    meter = Meter()
    read = read_upload(marked_mp4, "video", watermark_keys=[KEY], fingerprint=True, meter=meter)
    found, _ = read.watermark()
    assert found.frames_used == EARLY_CHECKS[0] and meter.frames == 72
    assert read.prints is not None and read.prints.frames == 72 and read.fingerprint() is not None


def test_no_keys_reads_no_mark(marked_mp4: bytes) -> None:
    read = read_upload(marked_mp4, "video", watermark_keys=(), fingerprint=False, meter=Meter())
    assert read.marks is None and read.watermark_error is None
    with pytest.raises(RuntimeError, match="not asked for"):
        read.watermark()


def test_the_report_names_the_early_read(marked_mp4: bytes) -> None:
    report = verify_bytes(marked_mp4, watermark_keys=[OTHER, KEY], meter=Meter())
    wm = report["watermark"]
    assert wm["checked"] and wm["found"] and wm["keys_tried"] == 2
    assert wm["payload"] == PAYLOAD.hex() and wm["frames_used"] == EARLY_CHECKS[0] and wm["key_id"] == KEY.key_id
    assert report["content_id_source"] == "watermark"
    unmarked = verify_bytes(marked_mp4, watermark_keys=[OTHER], meter=Meter())["watermark"]
    assert unmarked == {"checked": True, "found": False, "keys_tried": 1}

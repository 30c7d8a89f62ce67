"""The labels report: for each law, which required elements a file carries (one output, three laws)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from media.video import Clip, read_video, write_video
from provenance.c2pa_seal import ManifestSpec, seal_video
from provenance.compliance import labels_report
from provenance.disclosure import Disclosure, write_implicit_label
from provenance.fingerprint import fingerprint_clip
from provenance.keys import SignerMaterial
from provenance.label import LabelSpec, declaration, draw_label
from provenance.softbinding import FINGERPRINT_ALG, WATERMARK_ALG, SoftBinding
from provenance.verify import C2paReport, read_c2pa
from provenance.watermark import WatermarkKey, detect_video, embed
from tests.media_tools import remux

PAYLOAD = bytes.fromhex("00112233aabbccdd")
FPS = 24.0


@pytest.fixture(scope="module")
def key() -> WatermarkKey:
    return WatermarkKey.generate()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, material: SignerMaterial, key: WatermarkKey) -> Path:
    """A release made the way the gate makes one: label, watermark, encode, implicit label, seal."""
    folder = tmp_path_factory.mktemp("release")
    yy, xx = np.mgrid[0:256, 0:256]
    base = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.uint8)
    frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(60)])
    label = LabelSpec("ada")
    placements = draw_label(frames, FPS, label)
    marked = embed(frames, PAYLOAD, key, strength=5.5)
    clip = Clip(frames=marked, fps=FPS)
    raw = folder / "marked.mp4"
    write_video(raw, clip, crf=18, preset="ultrafast")
    d = Disclosure(provider="ConsentGate", system="consentgate-procedural", system_version="0.1",
                   created=datetime(2026, 11, 29, tzinfo=UTC), content_id=PAYLOAD.hex(), creator_handle="ada",
                   digital_source_type="http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia")
    write_implicit_label(raw, d)
    spec = ManifestSpec(
        title="release", generator_name="consentgate-procedural", generator_version="0.1", learned_weights=False,
        governance={},
        soft_bindings=(SoftBinding.whole_clip(WATERMARK_ALG, PAYLOAD, clip.duration_s, watermark=True),
                       SoftBinding.whole_clip(FINGERPRINT_ALG, fingerprint_clip(clip, query_views=False).to_bytes(),
                                          clip.duration_s, watermark=False)),
        disclosure={"sb942": d.latent(), "visible_label": declaration(placements, 256, 256, FPS, label)},
    )
    out = folder / "release.mp4"
    seal_video(raw, out, spec, material)
    return out


def report(data: bytes, key: WatermarkKey, anchors: bytes | None, record: dict[str, Any] | None = None) -> Any:
    c2pa = read_c2pa(data, trust_anchors_pem=anchors)
    found = detect_video(data, key)
    return labels_report(data, c2pa, watermark_found=found is not None and found.payload == PAYLOAD, record=record)


def test_a_release_meets_all_three_laws(release: Path, key: WatermarkKey, material: SignerMaterial) -> None:
    r = report(release.read_bytes(), key, material.root_pem)

    assert {k: v["met"] for k, v in r.to_dict().items()} == {"eu_ai_act_art50": True, "ca_sb942": True,
                                                              "gb_45438_2025": True}
    assert r.law("ca_sb942").elements[0].where == "C2PA manifest (org.consentgate.disclosure)"


def test_a_stripped_reencoded_copy_keeps_the_watermark_and_the_record_path(
    release: Path, key: WatermarkKey, tmp_path: Path
) -> None:
    stripped = tmp_path / "stripped.mp4"
    remux(release, stripped)
    reencoded = tmp_path / "reencoded.mp4"
    write_video(reencoded, read_video(stripped), crf=28, preset="ultrafast")
    data = reencoded.read_bytes()
    record = {"provider": "ConsentGate", "system": "consentgate-procedural", "system_version": "0.1",
              "created": "2026-11-29T00:00:00Z", "content_id": PAYLOAD.hex()}

    without = report(data, key, None)
    withrec = report(data, key, None, record)

    assert without.law("eu_ai_act_art50").missing == ("machine_readable", "visible_label")
    assert without.law("ca_sb942").missing == ("provider", "system", "system_version", "created", "unique_id")
    assert withrec.law("ca_sb942").met
    assert {e.where for e in withrec.law("ca_sb942").elements} == {
        "release record found through the watermark or fingerprint"}
    assert without.law("gb_45438_2025").missing == ("explicit_label", "implicit_metadata", "implicit_xmp")


def test_a_tampered_manifest_counts_for_nothing(release: Path, key: WatermarkKey) -> None:
    data = bytearray(release.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the frames: the bmff hash no longer matches
    r = labels_report(bytes(data), read_c2pa(bytes(data)), watermark_found=False)

    assert read_c2pa(bytes(data)).state == "Invalid"
    assert r.law("eu_ai_act_art50").missing == ("machine_readable", "watermark", "visible_label")
    assert not r.law("ca_sb942").met


def test_a_file_with_nothing_meets_nothing() -> None:
    r = labels_report(b"\x00\x00\x00\x08free", C2paReport.absent(), watermark_found=False)
    assert all(not law.met and all(not e.found for e in law.elements) for law in r.laws)

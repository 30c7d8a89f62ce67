"""provenance.c2pa_seal and provenance.verify: seal generated video, read any file's manifest.

States and codes asserted here are the ones c2pa-python 0.38 (c2pa-rs 0.91) reports.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media.video import read_video
from provenance.c2pa_seal import (
    ALGORITHMIC_MEDIA,
    GENERATOR_LABEL,
    GOVERNANCE_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    ManifestSpec,
    seal_video,
)
from provenance.errors import SigningError, VerificationError
from provenance.keys import SignerMaterial, callback_signer_from_key
from provenance.verify import UNREADABLE_MANIFEST, C2paReport, mime_for, read_c2pa
from tests.media_tools import remux

GOVERNANCE: dict[str, Any] = {
    "generation_id": "gen-0001",
    "content_id": "c0ffee00",
    "likenesses": [{"likeness_id": "lk-1", "owner": "alice", "grant_id": "gr-9", "mode": "approved"}],
    "decisions": [{"rule": "public-figure", "outcome": "allow", "reason": "no public figure named"}],
    "score": 0.25,
    "note": "unicode survives: café ✓",
}


def make_spec(**overrides: Any) -> ManifestSpec:
    fields: dict[str, Any] = {
        "title": "gen-0001.mp4",
        "generator_name": "consentgate-procedural",
        "generator_version": "0.1",
        "learned_weights": False,
        "governance": GOVERNANCE,
    }
    return ManifestSpec(**(fields | overrides))


@pytest.fixture(scope="module")
def sealed(clip_mp4: Path, material: SignerMaterial, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    dst = tmp_path_factory.mktemp("sealed") / "sealed.mp4"
    seal_video(clip_mp4, dst, make_spec(), material)
    return dst.read_bytes()


def no_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".part")]


# --- sealing and reading our own files -------------------------------------------------------------


def test_sealed_clip_is_trusted_under_our_root(sealed: bytes, material: SignerMaterial) -> None:
    report = read_c2pa(sealed, trust_anchors_pem=material.root_pem)

    assert report.state == "Trusted"
    assert report.failures == ()
    assert report.trusted and report.present


def test_sealed_clip_without_anchors_is_valid_but_untrusted(sealed: bytes) -> None:
    report = read_c2pa(sealed)

    assert report.state == "Valid"
    assert report.failures == ("signingCredential.untrusted",)


def test_manifest_records_what_made_the_clip_and_why_it_was_allowed(
    sealed: bytes, material: SignerMaterial
) -> None:
    report = read_c2pa(sealed, trust_anchors_pem=material.root_pem)

    assert report.governance == GOVERNANCE
    assert report.digital_source_type == ALGORITHMIC_MEDIA  # the procedural renderer has no learned weights
    assert report.actions == ("c2pa.created",)
    assert report.software_agent == "consentgate-procedural/0.1"
    assert report.generator == {"name": "consentgate-procedural", "version": "0.1", "learned_weights": False}
    assert report.title == "gen-0001.mp4"
    assert report.claim_generator == "ConsentGate/0.1"
    assert report.issuer == "ConsentGate development CA"
    assert report.ingredients == ()
    assert json.loads(json.dumps(report.to_dict()))["governance"] == GOVERNANCE


def test_a_learned_model_is_declared_trained_algorithmic_media(
    clip_mp4: Path, material: SignerMaterial, tmp_path: Path
) -> None:
    dst = tmp_path / "learned.mp4"
    seal_video(clip_mp4, dst, make_spec(generator_name="diffusers/WanPipeline", learned_weights=True), material)

    assert read_c2pa(dst.read_bytes()).digital_source_type == TRAINED_ALGORITHMIC_MEDIA


def test_a_source_type_that_contradicts_the_generator_is_refused() -> None:
    with pytest.raises(SigningError, match="learned_weights=False makes algorithmicMedia"):
        make_spec(digital_source_type=TRAINED_ALGORITHMIC_MEDIA)


def test_sealed_clip_still_plays(sealed: bytes, tmp_path: Path) -> None:
    clip = read_video(sealed)

    assert clip.frames.shape == (48, 128, 128, 3)


def test_callback_signer_path_verifies(clip_mp4: Path, material: SignerMaterial, tmp_path: Path) -> None:
    calls: list[int] = []
    sign = callback_signer_from_key(material)

    def kms(data: bytes) -> bytes:
        calls.append(len(data))
        return sign(data)

    dst = tmp_path / "kms.mp4"
    seal_video(clip_mp4, dst, make_spec(), material, sign_fn=kms)
    report = read_c2pa(dst.read_bytes(), trust_anchors_pem=material.root_pem)

    assert calls, "the callback did the signing"
    assert report.state == "Trusted"
    assert report.governance == GOVERNANCE


def test_sealing_in_place_replaces_the_source(
    clip_mp4: Path, material: SignerMaterial, tmp_path: Path
) -> None:
    path = tmp_path / "clip.mp4"
    shutil.copy(clip_mp4, path)

    seal_video(path, path, make_spec(), material)

    assert read_c2pa(path.read_bytes(), trust_anchors_pem=material.root_pem).state == "Trusted"
    assert no_leftovers(tmp_path) == []


# --- tampering ------------------------------------------------------------------------------------


def test_flipped_byte_in_frame_data_is_invalid(sealed: bytes, material: SignerMaterial) -> None:
    data = bytearray(sealed)
    mdat = data.find(b"mdat")
    assert mdat > 0
    data[mdat + 200] ^= 0xFF

    report = read_c2pa(bytes(data), trust_anchors_pem=material.root_pem)

    assert report.state == "Invalid"
    assert "assertion.bmffHash.mismatch" in report.failures
    assert report.governance == GOVERNANCE, "what the manifest claims is still shown, flagged Invalid"


def test_undecodable_manifest_is_invalid_not_an_error(sealed: bytes) -> None:
    data = bytearray(sealed)
    jumd = data.find(b"jumd")
    data[jumd] = ord("x")

    report = read_c2pa(bytes(data))

    assert report.state == "Invalid"
    assert report.failures == (UNREADABLE_MANIFEST,)
    assert report.detail and "JUMD" in report.detail


def test_remux_drops_the_manifest(sealed: bytes, tmp_path: Path) -> None:
    (tmp_path / "sealed.mp4").write_bytes(sealed)
    remux(tmp_path / "sealed.mp4", tmp_path / "remuxed.mp4")

    report = read_c2pa((tmp_path / "remuxed.mp4").read_bytes())

    assert report.state == "absent"
    assert report == C2paReport.absent()


def test_unsealed_clip_is_absent(clip_mp4: Path) -> None:
    assert read_c2pa(clip_mp4.read_bytes()).state == "absent"


# --- files made by other C2PA implementations -----------------------------------------------------


THIRD_PARTY: list[tuple[str, str, Callable[[C2paReport], bool]]] = [
    ("video1.mp4", "Valid", lambda r: r.failures == ("signingCredential.untrusted",)
     and r.ingredients == ("video1.mp4",) and r.actions == ("c2pa.opened",) and r.title == "My Title"),
    ("video1_no_manifest.mp4", "absent", lambda r: r.failures == () and r.title is None),
    ("CA.jpg", "Valid", lambda r: r.ingredients == ("A.jpg",) and r.issuer == "C2PA Test Signing Cert"
     and r.failures == ("signingCredential.untrusted",)),
    ("E-sig-CA.jpg", "Invalid", lambda r: "claimSignature.mismatch" in r.failures),
    ("no_manifest.jpg", "absent", lambda r: r.governance is None),
]


@pytest.mark.parametrize(("name", "state", "check"), THIRD_PARTY, ids=[t[0] for t in THIRD_PARTY])
def test_third_party_files(
    c2pa_dir: Path, material: SignerMaterial, name: str, state: str, check: Callable[[C2paReport], bool]
) -> None:
    report = read_c2pa((c2pa_dir / name).read_bytes(), trust_anchors_pem=material.root_pem)

    assert report.state == state
    assert check(report), report
    assert report.governance is None
    json.dumps(report.to_dict())


# --- rejection paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage " * 20, b"\xff\xd8\xff" + b"x" * 100, b"\x1a\x45\xdf\xa3" + b"\x00" * 60],
    ids=["empty", "garbage", "broken-jpeg", "webm"],
)
def test_unreadable_input_raises(data: bytes) -> None:
    with pytest.raises(VerificationError) as info:
        read_c2pa(data)
    assert "\n" not in str(info.value)


def test_truncated_container_raises(sealed: bytes) -> None:
    with pytest.raises(VerificationError, match="could not read the input as video/mp4"):
        read_c2pa(sealed[:240])


def test_unknown_mime_and_bad_anchors_raise(sealed: bytes) -> None:
    with pytest.raises(VerificationError, match="MIME type"):
        read_c2pa(sealed, mime="video/x-nonsense")
    with pytest.raises(VerificationError, match="PEM"):
        read_c2pa(sealed, trust_anchors_pem=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(VerificationError, match="PEM"):
        read_c2pa(sealed, trust_anchors_pem=b"not a certificate")


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypisom", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"\x00\x00\x00\x1cftypavif", "image/avif"),
    ],
)
def test_mime_for(head: bytes, mime: str) -> None:
    assert mime_for(head) == mime


@pytest.mark.parametrize(
    "governance",
    [{"when": object()}, {"ids": {1, 2}}, {"score": float("nan")}, {1: "int key"}, {"nested": [{"b": b"x"}]}],
    ids=["object", "set", "nan", "int-key", "bytes"],
)
def test_spec_rejects_governance_that_is_not_json(governance: dict[Any, Any]) -> None:
    with pytest.raises(SigningError, match="governance"):
        make_spec(governance=governance)


@pytest.mark.parametrize("field", ["title", "generator_name", "generator_version", "claim_generator"])
def test_spec_rejects_empty_names(field: str) -> None:
    with pytest.raises(SigningError, match=field):
        make_spec(**{field: "  "})


def test_spec_copies_governance() -> None:
    source = {"likenesses": ["a"]}
    spec = make_spec(governance=source)
    source["likenesses"].append("b")

    assert spec.governance == {"likenesses": ["a"]}
    assert hash(spec) == hash(make_spec(governance={"other": 1})), "hashable; governance not in the hash"


def test_spec_manifest_definition_has_our_assertions() -> None:
    labels = [a["label"] for a in make_spec().manifest_definition()["assertions"]]

    assert labels == ["c2pa.actions.v2", GENERATOR_LABEL, GOVERNANCE_LABEL]


def test_failed_signing_leaves_no_file(clip_mp4: Path, material: SignerMaterial, tmp_path: Path) -> None:
    def broken_kms(data: bytes) -> bytes:
        raise ConnectionError("KMS unreachable")

    dst = tmp_path / "out.mp4"
    with pytest.raises(SigningError, match="KMS unreachable") as info:
        seal_video(clip_mp4, dst, make_spec(), material, sign_fn=broken_kms)

    assert isinstance(info.value.__cause__, ConnectionError)
    assert not dst.exists()
    assert no_leftovers(tmp_path) == []


def test_failed_signing_keeps_an_existing_destination(
    clip_mp4: Path, material: SignerMaterial, tmp_path: Path
) -> None:
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous")

    with pytest.raises(SigningError, match="signature does not match"):
        seal_video(clip_mp4, dst, make_spec(), material, sign_fn=lambda data: b"\x01" * 64)

    assert dst.read_bytes() == b"previous"
    assert no_leftovers(tmp_path) == []


def test_unreachable_tsa_fails_cleanly(clip_mp4: Path, material: SignerMaterial, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with pytest.raises(SigningError, match="c2pa could not sign") as info:
        seal_video(clip_mp4, dst, make_spec(), material, tsa_url="http://127.0.0.1:9/tsa")

    assert info.value.__cause__ is not None
    assert not dst.exists()
    assert no_leftovers(tmp_path) == []


def test_sealing_garbage_or_missing_input_fails(
    clip_mp4: Path, material: SignerMaterial, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 10)

    with pytest.raises(SigningError, match="cannot seal"):
        seal_video(garbage, tmp_path / "out.mp4", make_spec(), material)
    with pytest.raises(SigningError, match="cannot read"):
        seal_video(tmp_path / "missing.mp4", tmp_path / "out.mp4", make_spec(), material)
    with pytest.raises(SigningError, match="does not exist"):
        seal_video(clip_mp4, tmp_path / "nowhere" / "out.mp4", make_spec(), material)
    assert not (tmp_path / "out.mp4").exists()


def test_broken_mp4_fails_inside_c2pa(material: SignerMaterial, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\xff" * 40)

    with pytest.raises(SigningError, match="c2pa could not sign"):
        seal_video(broken, tmp_path / "out.mp4", make_spec(), material)
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_threads_seal_and_read_side_by_side(clip_mp4: Path, material: SignerMaterial, tmp_path: Path) -> None:
    """Each call builds its own c2pa objects, so concurrent workers do not share any."""
    import threading

    states: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(3):
                dst = tmp_path / f"t{i}-{j}.mp4"
                sign_fn = callback_signer_from_key(material) if j % 2 else None
                seal_video(clip_mp4, dst, make_spec(), material, sign_fn=sign_fn)
                states.append(read_c2pa(dst.read_bytes(), trust_anchors_pem=material.root_pem).state)
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert states == ["Trusted"] * 12

"""C2PA verdicts: agree with c2pa-python's own Reader on every fixture it opens, and say what it found in
every other case (a remote manifest, one it cannot process); sign and read every format it supports."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import c2pa
import numpy as np
import pytest
from PIL import Image

from provenance.c2pa_seal import ManifestSpec, seal_video
from provenance.errors import VerificationError
from provenance.keys import SignerMaterial
from provenance.verify import REMOTE_MANIFEST, UNREADABLE_MANIFEST, mime_for, read_c2pa

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
FIXTURES = sorted([*(TESTDATA / "c2pa").iterdir(), *(TESTDATA / "field-reports").glob("*.jpg"),
                   *(TESTDATA / "field-reports").glob("*.avif"), *(TESTDATA / "field-reports").glob("*.mp4")])


def reader_verdict(data: bytes) -> tuple[str, object]:
    """What c2pa-python's Reader itself says: ("state", (state, failure codes)) or ("error", (kind, text))."""
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    try:
        with c2pa.Settings.from_dict(settings) as s, c2pa.Context(settings=s) as ctx:
            with c2pa.Reader(mime_for(data[:64]), io.BytesIO(data), None, ctx) as r:
                results = r.get_validation_results() or {}
                codes = [f["code"] for f in (results.get("activeManifest") or {}).get("failure", [])]
                return "state", (r.get_validation_state(), codes)
    except c2pa.C2paError as e:
        return "error", (type(e).__name__, str(e))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_every_verdict_agrees_with_c2pa_pythons_reader(path: Path) -> None:
    data = path.read_bytes()
    how, verdict = reader_verdict(data)
    report = read_c2pa(data)
    if how == "state":
        state, codes = verdict  # type: ignore[misc]
        assert report.state == state
        assert list(report.failures[: len(codes)]) == codes
        return
    kind, text = verdict  # type: ignore[misc]
    if kind == "_C2paManifestNotFound":
        assert report.state == "absent" and report.failures == ()
    elif text.startswith("Remote:"):  # c2pa-python 0.38 raises its base class here
        assert report.state == "remote" and report.failures == (REMOTE_MANIFEST,)
        assert report.remote_url and report.remote_url in text
    else:
        assert report.state == "Invalid" and report.failures == (UNREADABLE_MANIFEST,)
        assert report.detail == " ".join(text.split()) and report.reader_error == text.split(":")[0]


def test_the_field_reports_say_what_the_reader_found() -> None:
    remote = read_c2pa((TESTDATA / "field-reports" / "c2pa-remote-manifest.jpg").read_bytes())
    assert remote.state == "remote" and remote.present
    url = r"https://cai-manifests\.adobe\.com/manifests/adobe-urn-uuid-[0-9a-f-]+"
    assert re.fullmatch(url, remote.remote_url or "")
    odd = read_c2pa((TESTDATA / "field-reports" / "c2pa-unknown-alg.jpg").read_bytes())
    assert (odd.state, odd.reader_error, odd.detail) == ("Invalid", "Other", "Other: unknown algorithm")
    assert odd.to_dict()["reader_error"] == "Other"
    assert read_c2pa((TESTDATA / "field-reports" / "photo-12mp.avif").read_bytes()).state == "absent"


def test_an_unparsable_input_is_still_an_error() -> None:
    with pytest.raises(VerificationError, match="asset could not be parsed"):
        read_c2pa(b"GIF89a" + b"\x00" * 50)


def _picture() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.random.default_rng(1).integers(-3000, 3000, 8000).astype("<i2").tobytes())
    return buf.getvalue()


def _encoded(fmt: str, **options: object) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    img = _picture()
    if options.pop("animated", False):
        options.update(save_all=True, append_images=[img.rotate(90)], duration=100, loop=0)
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def signed_files(tmp: Path, material: SignerMaterial) -> dict[str, bytes]:
    """A small file of each format, signed with the development CA through seal_video."""
    spec = ManifestSpec(title="probe", generator_name="consentgate-test", generator_version="1",
                        learned_weights=False, governance={"content_id": "00c0ffee00c0ffee"})
    sources = {"tiff": _encoded("TIFF"), "gif": _encoded("GIF", animated=True),
               "webp": _encoded("WEBP", animated=True), "png": _encoded("PNG"), "avif": _encoded("AVIF"),
               "heic": _encoded("HEIF"), "wav": _wav()}
    out = {}
    for name, data in sources.items():
        (tmp / f"in.{name}").write_bytes(data)
        seal_video(tmp / f"in.{name}", tmp / f"signed.{name}", spec, material)
        out[name] = (tmp / f"signed.{name}").read_bytes()
    return out


@pytest.fixture(scope="module")
def signed(material: SignerMaterial, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return signed_files(tmp_path_factory.mktemp("signed"), material)


@pytest.mark.parametrize("name", ["tiff", "gif", "webp", "png", "avif", "heic", "wav"])
def test_every_format_the_reader_supports_is_read(signed: dict[str, bytes], material: SignerMaterial,
                                                  name: str) -> None:
    report = read_c2pa(signed[name], trust_anchors_pem=material.root_pem)
    assert report.state == "Trusted", report
    assert (report.governance or {}).get("content_id") == "00c0ffee00c0ffee"
    assert reader_verdict(signed[name])[0] == "state"

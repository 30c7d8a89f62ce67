"""The declared watermark (C2PA 2.2 soft bindings), the GB 45438 implicit label, and soft binding resolution.

Everything written here is read back with libraries that are not our writer: c2pa-python's Reader for the
manifest, FFmpeg (PyAV) and exiftool for the MP4 item and the XMP packet.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import c2pa
import pytest

from provenance.c2pa_seal import (
    ALGORITHMIC_MEDIA,
    DISCLOSURE_LABEL,
    Ingredient,
    ManifestSpec,
    check_sealed,
    seal_video,
)
from provenance.disclosure import AIGC_FIELDS, Disclosure, read_implicit_label, write_implicit_label
from provenance.errors import SigningError
from provenance.keys import SignerMaterial
from provenance.softbinding import (
    FINGERPRINT_ALG,
    WATERMARK_ALG,
    BindingQueryError,
    SoftBinding,
    fingerprint_score,
    resolve_by_binding,
    resolve_by_content,
)
from tests.media_tools import remux

PAYLOAD = bytes.fromhex("0123456789abcdef")
FP_VALUE = bytes(range(256)) * 4


def disclosure(**overrides: Any) -> Disclosure:
    fields: dict[str, Any] = dict(provider="ConsentGate", system="consentgate-procedural", system_version="0.1",
                                  created=datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC),
                                  content_id=PAYLOAD.hex(), creator_handle="ada", reserved1="wmkey-1",
                                  digital_source_type=ALGORITHMIC_MEDIA)
    return Disclosure(**(fields | overrides))


def spec(**overrides: Any) -> ManifestSpec:
    fields: dict[str, Any] = dict(
        title="gen.mp4", generator_name="consentgate-procedural", generator_version="0.1", learned_weights=False,
        governance={"decisions": []},
        soft_bindings=(SoftBinding.whole_clip(WATERMARK_ALG, PAYLOAD, 2.0, watermark=True),
                       SoftBinding.whole_clip(FINGERPRINT_ALG, FP_VALUE, 2.0, watermark=False)),
        disclosure={"sb942": disclosure().latent()},
    )
    return ManifestSpec(**(fields | overrides))


def reader_store(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh, c2pa.Reader("video/mp4", fh) as reader:
        return json.loads(reader.json())  # type: ignore[no-any-return]


def active(store: dict[str, Any]) -> dict[str, Any]:
    return store["manifests"][store["active_manifest"]]  # type: ignore[no-any-return]


def assertions(manifest: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return [a["data"] for a in manifest["assertions"] if a["label"].split("__")[0] == label]


@pytest.fixture(scope="module")
def labelled_mp4(clip_mp4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("implicit") / "marked.mp4"
    shutil.copy(clip_mp4, path)
    write_implicit_label(path, disclosure())
    return path


@pytest.fixture(scope="module")
def sealed(labelled_mp4: Path, material: SignerMaterial, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    dst = tmp_path_factory.mktemp("sealed") / "sealed.mp4"
    return dst, seal_video(labelled_mp4, dst, spec(), material)


# --- the manifest declares the watermark and the fingerprint ---------------------------------------------


def test_manifest_declares_the_watermark_action_and_both_soft_bindings(sealed: tuple[Path, Any]) -> None:
    path, result = sealed
    store = reader_store(path)
    manifest = active(store)

    assert store["active_manifest"] == result.manifest_id and result.manifest_id.startswith("urn:c2pa:")
    actions = [a for d in assertions(manifest, "c2pa.actions.v2") for a in d["actions"]]
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.watermarked"]
    assert actions[0]["digitalSourceType"] == ALGORITHMIC_MEDIA
    bindings = {b["alg"]: b for b in assertions(manifest, "c2pa.soft-binding")}
    assert set(bindings) == {WATERMARK_ALG, FINGERPRINT_ALG}
    (block,) = bindings[WATERMARK_ALG]["blocks"]
    assert base64.b64decode(block["value"]) == PAYLOAD
    assert block["scope"]["timespan"] == {"start": 0, "end": 2000}
    assert base64.b64decode(bindings[FINGERPRINT_ALG]["blocks"][0]["value"]) == FP_VALUE


def test_manifest_carries_the_sb942_latent_disclosure(sealed: tuple[Path, Any]) -> None:
    (data,) = assertions(active(reader_store(sealed[0])), DISCLOSURE_LABEL)

    assert data["sb942"] == {"provider": "ConsentGate", "system": "consentgate-procedural", "system_version": "0.1",
                             "created": "2026-11-29T12:00:00Z", "content_id": PAYLOAD.hex()}


def test_the_store_returned_validates_with_the_sealed_file(sealed: tuple[Path, Any], material: SignerMaterial) -> None:
    path, result = sealed
    settings = c2pa.Settings.from_dict({"trust": {"user_anchors": material.root_pem.decode()}})
    with settings, c2pa.Context(settings=settings) as ctx, open(path, "rb") as fh, \
            c2pa.Reader("video/mp4", fh, result.store, ctx) as reader:
        assert reader.get_validation_state() == "Trusted"


def test_check_sealed_refuses_a_manifest_that_lacks_a_declared_binding(sealed: tuple[Path, Any]) -> None:
    other = spec(soft_bindings=(SoftBinding.whole_clip(WATERMARK_ALG, b"\x00" * 8, 2.0, watermark=True),))
    with open(sealed[0], "rb") as fh, pytest.raises(SigningError, match="lacks the soft binding"):
        check_sealed(fh, "video/mp4", other)


def test_check_sealed_refuses_a_manifest_without_the_watermarked_action(
    clip_mp4: Path, material: SignerMaterial, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.mp4"
    seal_video(clip_mp4, plain, spec(soft_bindings=()), material)
    with open(plain, "rb") as fh, pytest.raises(SigningError, match="c2pa.watermarked"):
        check_sealed(fh, "video/mp4", spec())


def test_a_remix_chain_shows_every_ancestor_in_the_reader(
    sealed: tuple[Path, Any], clip_mp4: Path, material: SignerMaterial, tmp_path: Path
) -> None:
    child, grandchild = tmp_path / "child.mp4", tmp_path / "grandchild.mp4"
    seal_video(clip_mp4, child, spec(title="child", ingredients=(Ingredient(sealed[0], "parent"),)), material)
    seal_video(clip_mp4, grandchild, spec(title="grandchild", ingredients=(Ingredient(child, "child"),)), material)
    store = reader_store(grandchild)

    titles = sorted(m["title"] for m in store["manifests"].values())
    assert titles == ["child", "gen.mp4", "grandchild"]
    assert [i["relationship"] for i in active(store)["ingredients"]] == ["inputTo"]
    assert store["validation_state"] in ("Valid", "Trusted")


# --- GB 45438 implicit label, read back by other readers --------------------------------------------------


def test_the_aigc_item_reads_back_with_ffmpeg(sealed: tuple[Path, Any]) -> None:
    with av.open(str(sealed[0])) as container:
        aigc = json.loads(container.metadata["AIGC"])

    assert list(aigc) == list(AIGC_FIELDS)
    assert aigc["Label"] == "1" and aigc["ContentProducer"] == "ConsentGate" and aigc["ProduceID"] == PAYLOAD.hex()


def test_the_aigc_item_and_the_xmp_read_back_with_exiftool(sealed: tuple[Path, Any]) -> None:
    if shutil.which("exiftool") is None:
        pytest.fail("exiftool is not installed: apt-get install libimage-exiftool-perl (.ci/run does)")
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", str(sealed[0])], capture_output=True, text=True, check=True)
    (tags,) = json.loads(out.stdout)

    assert json.loads(tags["ItemList:AIGC"] if "ItemList:AIGC" in tags else tags["iTunes:AIGC"]) == disclosure().aigc()
    assert json.loads(tags["XMP-TC260:Aigc"]) == disclosure().aigc()
    assert tags["XMP-iptcExt:DigitalSourceType"] == ALGORITHMIC_MEDIA


def test_the_c2pa_hash_covers_the_implicit_label(sealed: tuple[Path, Any], tmp_path: Path) -> None:
    data = bytearray(sealed[0].read_bytes())
    at = data.rindex(b'"Label":"1"')
    data[at + 9] = ord("3")  # "possibly generated": the label downgraded after signing
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))

    store = reader_store(tampered)
    codes = [f["code"] for f in store["validation_results"]["activeManifest"]["failure"]]
    assert "assertion.bmffHash.mismatch" in codes


def test_read_implicit_label_finds_both_copies_and_nothing_after_a_remux(sealed: tuple[Path, Any],
                                                                         tmp_path: Path) -> None:
    found = read_implicit_label(sealed[0].read_bytes())
    assert found.item == found.xmp == disclosure().aigc()
    assert found.xmp_source_type == ALGORITHMIC_MEDIA

    stripped = tmp_path / "stripped.mp4"
    remux(sealed[0], stripped)
    bare = read_implicit_label(stripped.read_bytes())
    assert bare.xmp is None and bare.missing("xmp") == AIGC_FIELDS


def test_a_second_xmp_packet_is_refused(labelled_mp4: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again.mp4"
    shutil.copy(labelled_mp4, copy)
    before = copy.read_bytes()
    with pytest.raises(SigningError, match="already carries an XMP packet"):
        write_implicit_label(copy, disclosure())
    assert copy.read_bytes() == before


def test_a_file_that_is_not_mp4_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SigningError, match="cannot write the implicit AI label"):
        write_implicit_label(bad, disclosure())
    assert bad.read_bytes() == b"not a video at all"


@pytest.mark.parametrize("field,value,message", [
    ("content_id", "xyz", "16 lowercase hex"),
    ("creator_handle", "a b", "public handle"),
    ("created", datetime(2026, 1, 1), "timezone-aware"),
    ("provider", "", "provider must be"),
])
def test_a_bad_disclosure_is_refused(field: str, value: Any, message: str) -> None:
    with pytest.raises(SigningError, match=message):
        disclosure(**{field: value})


def test_xmp_text_is_escaped() -> None:
    d = disclosure(provider='A<&>"B')
    assert read_implicit_label(b"").xmp is None
    assert b"A&lt;&amp;&gt;" in d.xmp()


# --- resolution core ---------------------------------------------------------------------------------------


class Directory:
    def __init__(self, marks: dict[bytes, str], prints: Sequence[tuple[str, float]]) -> None:
        self.marks, self.prints = marks, prints

    def by_watermark(self, payload: bytes) -> list[str]:
        return [self.marks[payload]] if payload in self.marks else []

    def by_fingerprint(self, fp: Any, max_results: int) -> list[tuple[str, float]]:
        return list(self.prints)[:max_results]


def test_resolve_by_binding_finds_the_watermark_payload() -> None:
    d = Directory({PAYLOAD: "urn:c2pa:a"}, [])
    value = base64.urlsafe_b64encode(PAYLOAD).decode().rstrip("=")

    assert [m.to_dict() for m in resolve_by_binding(d, WATERMARK_ALG, value)] == [
        {"manifestId": "urn:c2pa:a", "similarityScore": 100}]
    assert resolve_by_binding(d, WATERMARK_ALG, base64.b64encode(b"\x01" * 8).decode()) == []


@pytest.mark.parametrize("alg,value,message", [
    ("com.example.unknown.1", base64.b64encode(PAYLOAD).decode(), "alg must be one of"),
    (WATERMARK_ALG, "!!!not base64", "must be base64"),
    (WATERMARK_ALG, base64.b64encode(b"short").decode(), "is 8 bytes"),
    (FINGERPRINT_ALG, base64.b64encode(b"short").decode(), "not a dev.consentgate.fingerprint.1 value"),
    (WATERMARK_ALG, "", "non-empty base64"),
])
def test_resolve_by_binding_rejects_bad_queries(alg: str, value: str, message: str) -> None:
    with pytest.raises(BindingQueryError, match=message):
        resolve_by_binding(Directory({}, []), alg, value)


@pytest.mark.parametrize("max_results", [0, -1, 101, True, "3"])
def test_max_results_out_of_range_is_refused(max_results: Any) -> None:
    with pytest.raises(BindingQueryError, match="maxResults"):
        resolve_by_binding(Directory({}, []), WATERMARK_ALG, base64.b64encode(PAYLOAD).decode(),
                           max_results=max_results)


def test_resolve_by_content_puts_the_watermark_first_and_drops_duplicates() -> None:
    d = Directory({PAYLOAD: "urn:c2pa:a"}, [("urn:c2pa:a", 0.0), ("urn:c2pa:b", 0.03)])
    matches = resolve_by_content(d, watermark_payload=PAYLOAD, fingerprint=object())

    assert [(m.manifest_id, m.alg) for m in matches] == [("urn:c2pa:a", WATERMARK_ALG), ("urn:c2pa:b", FINGERPRINT_ALG)]
    assert resolve_by_content(d, watermark_payload=None, fingerprint=None) == []
    assert [m.manifest_id for m in resolve_by_content(d, watermark_payload=PAYLOAD, fingerprint=object(),
                                                      alg=FINGERPRINT_ALG)] == ["urn:c2pa:a", "urn:c2pa:b"]


def test_fingerprint_scores_fall_with_distance() -> None:
    assert fingerprint_score(0.0) == 99
    assert fingerprint_score(0.03) == 50
    assert fingerprint_score(0.0599) == 1
    assert fingerprint_score(0.5) == 1


def test_the_algorithm_names_are_entity_namespaced_as_c2pa_asks() -> None:
    """C2PA 2.2 section 6.2.1: an entity-specific name begins with the entity's reversed Internet domain and its
    components follow ``[a-zA-Z0-9][a-zA-Z0-9_-]*``; a version component ends each name, as in the soft binding
    algorithm list. The names are not on that list (docs/adr/0015): /services/supportedAlgorithms names them."""
    import re

    from provenance.softbinding import SUPPORTED_ALGS

    component = r"[A-Za-z0-9][A-Za-z0-9_-]*"
    names = [alg for algs in SUPPORTED_ALGS.values() for alg in algs]
    assert names == [WATERMARK_ALG, FINGERPRINT_ALG]
    for alg in names:
        assert re.fullmatch(rf"{component}(\.{component})+", alg), alg
        assert alg.startswith("dev.consentgate.") and re.search(r"\.[0-9]+$", alg), alg

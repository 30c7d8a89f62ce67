"""provenance.manifest_store: one manifest cut out of a C2PA Manifest Store, read back with c2pa-python (never
with our parser), and malformed stores refused."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import c2pa
import pytest

from provenance.c2pa_seal import Ingredient, Sealed, seal_video
from provenance.keys import SignerMaterial
from provenance.manifest_store import StoreError, manifest_labels, manifest_only
from tests.provenance.test_c2pa import make_spec


@pytest.fixture(scope="module")
def remix(clip_mp4: Path, material: SignerMaterial, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Sealed, Sealed, Path]:
    """A sealed file, and a second sealed from it (``inputTo``): its store holds both manifests."""
    folder = tmp_path_factory.mktemp("remix")
    parent = seal_video(clip_mp4, folder / "parent.mp4", make_spec(), material)
    child = seal_video(clip_mp4, folder / "child.mp4",
                       make_spec(ingredients=(Ingredient(folder / "parent.mp4", "parent"),)), material)
    return parent, child, folder / "child.mp4"


def _read(store: bytes, video: Path | None = None, anchors: bytes | None = None) -> tuple[dict, dict]:
    settings = c2pa.Settings.from_dict({"trust": {"user_anchors": anchors.decode()}} if anchors else {})
    with settings, c2pa.Context(settings=settings) as ctx:
        src = io.BytesIO(video.read_bytes()) if video else io.BytesIO(store)
        with c2pa.Reader("video/mp4" if video else "application/c2pa", src, store if video else None,
                         ctx) as reader:
            return json.loads(reader.json()), reader.get_validation_results()


def test_the_active_manifest_alone_is_its_signed_bytes(remix: tuple[Sealed, Sealed, Path],
                                                       material: SignerMaterial) -> None:
    parent, child, video = remix
    assert manifest_labels(child.store) == [parent.manifest_id, child.manifest_id]  # the active one last
    alone = manifest_only(child.store, child.manifest_id)
    assert manifest_labels(alone) == [child.manifest_id] and len(alone) < len(child.store)

    store, results = _read(alone, video, material.root_pem)
    assert list(store["manifests"]) == [child.manifest_id] and store["active_manifest"] == child.manifest_id
    codes = {s["code"] for s in results["activeManifest"]["success"]}
    assert {"claimSignature.validated", "signingCredential.trusted", "assertion.bmffHash.match"} <= codes
    # what leaving the ingredient's manifest out means (C2PA 2.2, 15.11.3.3.2), and nothing else fails
    assert [f["code"] for f in results["activeManifest"]["failure"]] == ["ingredient.manifest.missing"]
    _, whole = _read(child.store, video, material.root_pem)
    assert whole["activeManifest"]["failure"] == []

    # a store of one manifest comes back byte for byte
    assert manifest_only(parent.store, parent.manifest_id) == parent.store
    # an ingredient's manifest, cut out of the remix's store, is the same bytes the parent's store holds
    assert manifest_only(child.store, parent.manifest_id) == parent.store


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _desc(label: bytes) -> bytes:
    return _box(b"jumd", bytes(16) + b"\x03" + label + b"\x00")


@pytest.mark.parametrize("data,error", [
    (b"", "one JUMBF superbox"),
    (b"\x00\x00\x00", "cut short"),
    (_box(b"free", b""), "one JUMBF superbox"),
    (_box(b"jumb", _desc(b"jp2c")), "not labelled 'c2pa'"),
    (_box(b"jumb", b""), "not labelled 'c2pa'"),
    (struct.pack(">I4s", 4096, b"jumb") + _desc(b"c2pa"), "claims 4096 bytes"),
    (struct.pack(">I4s", 3, b"jumb"), "claims 3 bytes"),
    (_box(b"jumb", _desc(b"c2pa")) + _box(b"jumb", _desc(b"c2pa")), "one JUMBF superbox"),
    (_box(b"jumb", _desc(b"c2pa") + _box(b"jumb", _desc(b"urn:c2pa:other"))), "no manifest 'urn:c2pa:x'"),
])
def test_what_is_not_a_store_with_that_manifest_is_refused(data: bytes, error: str) -> None:
    with pytest.raises(StoreError, match=error):
        manifest_only(data, "urn:c2pa:x")

"""Frozen vectors for the stored formats of ``provenance/``: watermark format v2 and fingerprint format v1.

Every released video carries the watermark for as long as copies circulate, and every release stores its
fingerprint, so these formats must read back forever. The clips and the blob in ``vectors/`` were written
once by ``vectors/make_vectors.py`` (see ``vectors/README.md``) and are never regenerated: a failure here
means the format changed. A new format is a new version (a new watermark key domain, ADR 0004; a new
fingerprint header version), with its own vectors beside these, never an edit of them.

(The log's entry, leaf, node and tree-head encodings: ``tests/governance/test_log_format.py``; the
commitments: ``test_commitments.py``; the enrollment template blob: ``tests/detectors/test_template_blob.py``.)
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from provenance import _convcode, watermark
from provenance.fingerprint import MATCH_THRESHOLD, SAMPLES, Fingerprint, fingerprint_video
from provenance.watermark import WatermarkKey, detect_video

VECTORS = Path(__file__).resolve().parent / "vectors"


def _maker() -> ModuleType:
    """``vectors/make_vectors.py`` (its key, payload and scene), loaded by path: ``tests/`` is no package."""
    name = "consentgate_frozen_vectors"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, VECTORS / "make_vectors.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


KEY = WatermarkKey(b"consentgate-frozen-vector-key-v2")
PAYLOAD = bytes.fromhex("0123456789abcdef")

#: SHA-256 of :func:`_v2_parameters` as written by watermark format v2 (main at 58932df).
V2_PARAMETERS = "2268f71e7eac9baca9f0d492146990e6ba15c389b5567af2ebac9b689ed55c90"


def _v2_parameters() -> bytes:
    """Everything a reader of a v2 mark must agree on with the embedder that wrote it, as bytes: the key's
    domain, payload and tag sizes, the convolutional code, the tile and cell geometry, the keyed layout
    (sync cells, the coded bit of every other cell, the chips) and the coded message for a fixed key and
    payload. Embedder tuning (strength, sync gain, masks) and detector tuning (filters, search) are not
    in it: old marks read back whatever they are (the clips below guard that)."""
    bit_of_cell, chips = watermark._layout(KEY.secret)
    coded = _convcode.conv_encode(watermark._message_bits(PAYLOAD, KEY))
    return b"|".join([
        watermark._DOMAIN,
        struct.pack(">8H", watermark.PAYLOAD_BYTES, watermark._TAG_BYTES, watermark._CODED_BITS, watermark._TILE,
                    watermark._CELL, watermark._PERIOD, watermark._SYNC, watermark._MIN_SIDE),
        struct.pack(">4H", _convcode._MEMORY, *_convcode._GENERATORS),
        np.asarray(bit_of_cell, ">i2").tobytes(),
        np.asarray(chips, "i1").tobytes(),
        np.asarray(coded, "u1").tobytes(),
    ])


def test_watermark_format_v2_parameters_are_frozen() -> None:
    assert hashlib.sha256(_v2_parameters()).hexdigest() == V2_PARAMETERS, (
        "the watermark's format parameters changed: videos released under format v2 would no longer read "
        "back. A new layout is format v3 (a new key domain, ADR 0004), never an edit of v2")


def test_watermark_format_v2_keyed_values() -> None:
    """The key's public id, the tag and the layout's seed, for the fixed test key (readable by hand)."""
    assert watermark._DOMAIN == b"consentgate/watermark/v2/"
    assert KEY.key_id == "0cb53664"
    assert watermark._tag(PAYLOAD, KEY).hex() == "d0093144"
    bit_of_cell, chips = watermark._layout(KEY.secret)
    assert int((bit_of_cell < 0).sum()) == watermark._SYNC == 88
    assert np.bincount(bit_of_cell[bit_of_cell >= 0]).tolist() == [3] * watermark._CODED_BITS == [3] * 312


@pytest.mark.parametrize(("name", "scale"), [("watermark-v2-64px.mp4", 0.5), ("watermark-v2-128px.mp4", 1.0)])
def test_watermark_format_v2_clip_reads_back(name: str, scale: float) -> None:
    """A clip marked by format v2's code (64 px: 2-pixel cells; 128 px: 4-pixel cells), H.264 crf 18."""
    found = detect_video(VECTORS / name, KEY)
    assert found is not None, f"{name}: a watermark format v2 clip no longer reads back"
    assert found.payload == PAYLOAD
    assert (found.scale, found.shift, found.mirrored) == (scale, (0, 0), False)
    assert found.frames_used == _maker().FRAMES


def test_watermark_format_v2_clip_needs_its_key() -> None:
    assert detect_video(VECTORS / "watermark-v2-128px.mp4", WatermarkKey(b"another-key-of-at-least-16")) is None


def test_watermark_vectors_were_made_by_the_committed_recipe() -> None:
    """The maker's key and payload are the ones tested here (so its README tells the truth)."""
    maker = _maker()
    assert (maker.KEY, maker.PAYLOAD) == (KEY, PAYLOAD)


#: The stored fingerprint's header: magic, version 1, samples, dims per sample (``>4sBBH``).
FINGERPRINT_V1_HEADER = b"CGFP\x01\x10\x01\x08"


def test_fingerprint_format_v1_blob_loads() -> None:
    blob = (VECTORS / "fingerprint-v1.bin").read_bytes()
    assert len(blob) == 4232 and blob[:8] == FINGERPRINT_V1_HEADER
    fp = Fingerprint.from_bytes(blob)
    assert fp.data.shape == (SAMPLES, 264) and fp.to_bytes() == blob


def test_fingerprint_format_v1_matches_what_is_computed_today() -> None:
    """A stored v1 fingerprint must still find its clip: today's fingerprint of the same clip lies within
    the match threshold of it (they were equal when the vector was written)."""
    stored = Fingerprint.from_bytes((VECTORS / "fingerprint-v1.bin").read_bytes())
    today = fingerprint_video(VECTORS / "watermark-v2-128px.mp4")
    assert today.distance(stored) < MATCH_THRESHOLD / 4, (
        "fingerprint format v1: today's fingerprint of the vector clip no longer matches the stored one")

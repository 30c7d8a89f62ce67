"""The stored template blob (``Template.to_bytes``) is a format: blobs written by earlier code must load.

The two vectors below are frozen: ``V1`` was written by ``Template.to_bytes`` before templates had pose
bins (main at 269453b), ``V1_BINS`` by the first code that wrote bins. Never regenerate them: a change
that breaks either breaks every stored likeness. Both hold embeddings ``arange(8).reshape(2, 4) / 8``,
backend ``dlib-resnet-v1`` and a 2x2 reference ``arange(12)``.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from detectors.enroll import POSE_BINS, Template
from detectors.errors import DetectorError

V1 = base64.b64decode(
    "UEsDBC0AAAAIAAAAIQBGOier//////////8KABQAZm9ybWF0Lm5weQEAEADcAAAAAAAAAGsAAAAAAAAAm+wX6hsQychQxlCtnpJa"
    "nFykbqWgbhNqZKyuo6Cell9UUpSYF59flJIKknBLzClOBYoXZyQWpAL5Gpo6CrUKlACuZAYGhnwgzgPiYiBOhbJLgDgdiBOhbJC4"
    "LhI7F4gLgDgHi5oyIDYEYgBQSwMELQAAAAgAAAAhAOTvVBj//////////w4AFABlbWJlZGRpbmdzLm5weQEAEACgAAAAAAAAAFwA"
    "AAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpNmoq6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaRjoKJpo6CrUKZAMu"
    "BgiwY2BoAOIDQMxgz8CgAMQOQJxgDwBQSwMELQAAAAgAAAAhAG6iWD7//////////wsAFABiYWNrZW5kLm5weQEAEAC4AAAAAAAA"
    "AGMAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbhNqaKKuo6Cell9UUpSYF59flJIKknBLzClOBYoXZyQWpAL5Gpo6CrUKlACu"
    "FAYGhhwgzgTiJCDWBeIiIE4F4mIgzoOyS6ByZUBsCMQAUEsDBC0AAAAIAAAAIQDFIoSg//////////8NABQAcmVmZXJlbmNlLm5w"
    "eQEAEACMAAAAAAAAAFQAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgXlNqqK6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBak"
    "AvkaRjoKQGSsqaNQq0Ae4GJgZGJmYWVj5+Dk4gYAUEsBAi0DLQAAAAgAAAAhAEY6J6trAAAA3AAAAAoAAAAAAAAAAAAAAIABAAAA"
    "AGZvcm1hdC5ucHlQSwECLQMtAAAACAAAACEA5O9UGFwAAACgAAAADgAAAAAAAAAAAAAAgAGnAAAAZW1iZWRkaW5ncy5ucHlQSwEC"
    "LQMtAAAACAAAACEAbqJYPmMAAAC4AAAACwAAAAAAAAAAAAAAgAFDAQAAYmFja2VuZC5ucHlQSwECLQMtAAAACAAAACEAxSKEoFQA"
    "AACMAAAADQAAAAAAAAAAAAAAgAHjAQAAcmVmZXJlbmNlLm5weVBLBQYAAAAABAAEAOgAAAB2AgAAAAA="
)
V1_BINS = base64.b64decode(
    "UEsDBC0AAAAIAAAAIQBGOier//////////8KABQAZm9ybWF0Lm5weQEAEADcAAAAAAAAAGsAAAAAAAAAm+wX6hsQychQxlCtnpJa"
    "nFykbqWgbhNqZKyuo6Cell9UUpSYF59flJIKknBLzClOBYoXZyQWpAL5Gpo6CrUKlACuZAYGhnwgzgPiYiBOhbJLgDgdiBOhbJC4"
    "LhI7F4gLgDgHi5oyIDYEYgBQSwMELQAAAAgAAAAhAOTvVBj//////////w4AFABlbWJlZGRpbmdzLm5weQEAEACgAAAAAAAAAFwA"
    "AAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpNmoq6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaRjoKJpo6CrUKZAMu"
    "BgiwY2BoAOIDQMxgz8CgAMQOQJxgDwBQSwMELQAAAAgAAAAhAG6iWD7//////////wsAFABiYWNrZW5kLm5weQEAEAC4AAAAAAAA"
    "AGMAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbhNqaKKuo6Cell9UUpSYF59flJIKknBLzClOBYoXZyQWpAL5Gpo6CrUKlACu"
    "FAYGhhwgzgTiJCDWBeIiIE4F4mIgzoOyS6ByZUBsCMQAUEsDBC0AAAAIAAAAIQDFIoSg//////////8NABQAcmVmZXJlbmNlLm5w"
    "eQEAEACMAAAAAAAAAFQAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgXlNqqK6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBak"
    "AvkaRjoKQGSsqaNQq0Ae4GJgZGJmYWVj5+Dk4gYAUEsDBC0AAAAIAAAAIQAJdaST//////////8IABQAYmlucy5ucHkBABAAuAAA"
    "AAAAAABeAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG4Taq6uo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6mjoK"
    "tQoUAK40BgaGIiDOB+I8IC4B4kQgzoHiVCBOg4ojAwBQSwECLQMtAAAACAAAACEARjonq2sAAADcAAAACgAAAAAAAAAAAAAAgAEA"
    "AAAAZm9ybWF0Lm5weVBLAQItAy0AAAAIAAAAIQDk71QYXAAAAKAAAAAOAAAAAAAAAAAAAACAAacAAABlbWJlZGRpbmdzLm5weVBL"
    "AQItAy0AAAAIAAAAIQBuolg+YwAAALgAAAALAAAAAAAAAAAAAACAAUMBAABiYWNrZW5kLm5weVBLAQItAy0AAAAIAAAAIQDFIoSg"
    "VAAAAIwAAAANAAAAAAAAAAAAAACAAeMBAAByZWZlcmVuY2UubnB5UEsBAi0DLQAAAAgAAAAhAAl1pJNeAAAAuAAAAAgAAAAAAAAA"
    "AAAAAIABdgIAAGJpbnMubnB5UEsFBgAAAAAFAAUAHgEAAA4DAAAAAA=="
)
EMBEDDINGS = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
REFERENCE = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)


def test_a_blob_from_before_pose_bins_still_loads():
    t = Template.from_bytes(V1)
    np.testing.assert_array_equal(t.embeddings, EMBEDDINGS)
    np.testing.assert_array_equal(t.reference, REFERENCE)
    assert (t.backend, t.bins) == ("dlib-resnet-v1", ())
    assert t.view("frontal").shape == (0, 4)


def test_a_blob_with_pose_bins_loads_with_them():
    t = Template.from_bytes(V1_BINS)
    np.testing.assert_array_equal(t.embeddings, EMBEDDINGS)
    assert t.bins == ("frontal", "left")
    np.testing.assert_array_equal(t.view("left"), EMBEDDINGS[1:])


def test_the_members_written_are_the_documented_ones():
    plain = Template(EMBEDDINGS, "dlib-resnet-v1", REFERENCE)
    binned = Template(EMBEDDINGS, "dlib-resnet-v1", REFERENCE, bins=("frontal", "left"))
    with np.load(io.BytesIO(plain.to_bytes()), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["backend", "embeddings", "format", "reference"]  # as before bins
        assert str(npz["format"]) == "consentgate-template-v1"
    with np.load(io.BytesIO(binned.to_bytes()), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["backend", "bins", "embeddings", "format", "reference"]
        assert npz["bins"].dtype.kind == "U" and list(npz["bins"]) == ["frontal", "left"]
    again = Template.from_bytes(binned.to_bytes())
    assert again.bins == binned.bins and again.embeddings.dtype == np.float32


def test_code_that_predates_bins_reads_a_binned_blob():
    """What the loader of 269453b did: read format, embeddings, backend, reference; ignore the rest."""
    with np.load(io.BytesIO(V1_BINS), allow_pickle=False) as npz:
        assert str(npz["format"]) == "consentgate-template-v1"
        old = Template(embeddings=npz["embeddings"], backend=str(npz["backend"]), reference=npz["reference"])
    np.testing.assert_array_equal(old.embeddings, EMBEDDINGS)


@pytest.mark.parametrize("bins", [("frontal",), ("frontal", "sideways"), ["frontal", 3], "frontal"])
def test_bins_must_label_every_row_with_a_known_pose(bins):
    with pytest.raises(DetectorError):
        Template(EMBEDDINGS, "dlib-resnet-v1", REFERENCE, bins=bins)


def test_view_of_an_unknown_bin():
    with pytest.raises(DetectorError):
        Template(EMBEDDINGS, "x", REFERENCE).view("profile")
    assert set(POSE_BINS) == {"frontal", "left", "right", "up", "down"}
    assert "bins=frontal/left" in repr(Template(EMBEDDINGS, "x", REFERENCE, bins=("left", "frontal")))

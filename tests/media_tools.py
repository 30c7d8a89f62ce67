"""Media chores the tests need and the product does not: ``from tests.media_tools import remux``."""

from __future__ import annotations

import os

PathLike = str | os.PathLike[str]


def remux(src: PathLike, dst: PathLike) -> None:
    """Copy the streams into a new MP4 without re-encoding, as a re-upload does: it drops container-level boxes
    such as the C2PA manifest (MEASURED.md: c2pa then reads ``ManifestNotFound``)."""
    import av

    with av.open(os.fspath(src)) as inp, av.open(os.fspath(dst), mode="w", format="mp4") as out:
        mapping = {}
        for s in inp.streams:
            if s.type in ("video", "audio"):
                mapping[s.index] = out.add_stream_from_template(s)
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in mapping:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)

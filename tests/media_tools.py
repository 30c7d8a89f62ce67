"""Media chores the tests need and the product does not: ``from tests.media_tools import remux``."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

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


def encode_timed(frames: Any, times_ms: Sequence[int], *, declared_fps: int = 1000, fmt: str = "webm",
                 dts_ms: Sequence[int] | None = None) -> bytes:
    """``frames`` ((T, H, W, 3) uint8 RGB) as a WebM (VP8; ``fmt="mp4"``: H.264 without B-frames) whose frame
    ``i`` is stamped ``times_ms[i]`` milliseconds (packet pts, time base 1/1000), with ``dts_ms`` as decode
    times when given (an MP4 may then carry pts that go backwards). The header states ``declared_fps``: 1000
    is what FFmpeg reports for Chromium's MediaRecorder WebM, whose header states no rate at all. A WebM is
    written as a browser streams it, at 2 Mbit/s to a sink that cannot seek, so it states no duration either. With
    dropped frames and equal neighbours in ``times_ms`` this is what MediaRecorder writes on a busy machine."""
    import av
    import numpy as np

    codec = "libvpx" if fmt == "webm" else "libx264"
    sink = _Sink(seekable=fmt != "webm")
    with av.open(sink, mode="w", format=fmt) as out:  # type: ignore[call-overload]
        stream = out.add_stream(codec, rate=declared_fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "23", "x264-params": "bframes=0"}
        else:
            stream.bit_rate = 2_000_000  # as Chromium records (1.6-1.9 Mbit/s measured); libvpx's default is far less
        packets = []
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            packets += list(stream.encode(vf))
        packets += list(stream.encode())
        if len(packets) != len(times_ms):
            raise ValueError(f"{len(times_ms)} timestamps for {len(packets)} packets")
        for k, packet in enumerate(packets):
            packet.time_base = Fraction(1, 1000)
            packet.pts = int(times_ms[k])
            packet.dts = int(dts_ms[k]) if dts_ms is not None else int(times_ms[k])
            out.mux(packet)
    return sink.data.getvalue()


class _Sink(io.RawIOBase):
    """Where a muxer writes; one that cannot seek gets no duration patched in at the end (a browser's WebM)."""

    def __init__(self, *, seekable: bool) -> None:
        self.data = io.BytesIO()
        self._seekable = seekable

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.data.seek(offset, whence)

    def tell(self) -> int:
        return self.data.tell()

    def write(self, b) -> int:  # type: ignore[no-untyped-def,override]
        return self.data.write(b)

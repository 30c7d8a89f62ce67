"""Hostile and real-world inputs, built in memory in well under a second each: the decompression bombs and
the browser recording of ``docs/limits.md`` and ``../shared/testdata/field-reports/README.md``.

    >>> from bench.inputs import png_bomb
    >>> len(png_bomb(13000)) < 30_000
    True

Each video is made by encoding two or three tiny frames once and muxing copies of their packets
(identical frames: every copy decodes), so that 100,000 frames cost a second, not minutes of encoding.
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import numpy as np


def png_bomb(side: int = 13000) -> bytes:
    """A black ``side`` x ``side`` 1-bit grayscale PNG: 13000 x 13000 is ~20 KB on disk, 169 megapixels
    (about 500 MB as RGB) decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _seed(fmt: str, codec: str, side: int = 16):  # type: ignore[no-untyped-def]
    """A tiny file of three identical black ``side`` x ``side`` frames (a key frame, then inter frames): its open
    container, video stream and encoded packets, to copy from."""
    import av

    options = ({"preset": "ultrafast", "crf": "51", "x264-params": "keyint=100000:bframes=0"} if codec == "libx264"
               else {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "crf": "63", "b:v": "0"})
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=24)
        s.width = s.height = side
        s.pix_fmt = "yuv420p"
        s.options = options
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    src = av.open(io.BytesIO(buf.getvalue()))
    stream = src.streams.video[0]
    return src, stream, [bytes(p) for p in src.demux(stream) if p.size]


def _mux(fmt: str, codec: str, tracks: int, frames: int, fps: int, *, seekable: bool = True, side: int = 16) -> bytes:
    import av

    src, template, packets = _seed(fmt, codec, side)
    sink: io.BytesIO | _ForwardOnly = io.BytesIO() if seekable else _ForwardOnly()
    tb = Fraction(1, fps)
    with src, av.open(sink, "w", format=fmt) as out:  # type: ignore[arg-type]
        streams = [out.add_stream_from_template(template) for _ in range(tracks)]
        for s in streams:
            s.time_base = tb
            for i in range(frames):
                p = av.Packet(packets[0] if i == 0 else packets[1])
                p.pts = p.dts = i
                p.duration = 1
                p.time_base = tb
                p.is_keyframe = i == 0
                p.stream = s
                out.mux(p)
    return sink.getvalue()


class _ForwardOnly(io.RawIOBase):
    """A write-only sink that cannot seek: muxers then leave out what they would patch in at the end
    (Matroska's Duration, as a browser's MediaRecorder does)."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b) -> int:  # type: ignore[no-untyped-def,override]
        return self._buf.write(b)

    def getvalue(self) -> bytes:
        return self._buf.getvalue()


def many_frames_mp4(frames: int = 100_000, fps: int = 1000) -> bytes:
    """A 16x16 H.264 MP4 of ``frames`` frames at ``fps`` (100,000 at 1000 fps: 100 s, ~1.3 MB)."""
    return _mux("mp4", "libx264", 1, frames, fps)


def many_tracks_mp4(tracks: int = 900) -> bytes:
    """An MP4 with ``tracks`` 16x16 H.264 video tracks of two frames each (~1.5 MB for 900)."""
    return _mux("mp4", "libx264", tracks, 2, 24)


def no_duration_webm(seconds: int = 400, fps: int = 10, side: int = 16) -> bytes:
    """A ``side`` x ``side`` VP9 WebM of ``seconds`` at ``fps`` written as a browser records: neither the
    container nor the stream states a duration (checked with PyAV by the tests)."""
    return _mux("webm", "libvpx-vp9", 1, seconds * fps, fps, seekable=False, side=side)

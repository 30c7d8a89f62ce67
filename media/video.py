"""Video and image decode/encode: the one place in ConsentGate that opens media containers.

Everything else works on :class:`Clip` values (RGB frames as one numpy array, plus optional audio) or
on frames streamed one at a time by :func:`iter_frames`::

    >>> import numpy as np
    >>> from media.video import Clip, write_video, read_video
    >>> clip = Clip(frames=np.zeros((24, 64, 64, 3), np.uint8), fps=24.0)
    >>> write_video("/tmp/black.mp4", clip)
    >>> read_video("/tmp/black.mp4").frames.shape
    (24, 64, 64, 3)

Every decode here runs under :class:`~media.limits.Limits` (default
:data:`~media.limits.DEFAULT_LIMITS`; ``limits=None`` only for files the service made itself): tracks are
capped when the container is opened, frame size, frame count and decoded seconds are counted frame by
frame, and decoding stops with :class:`~media.limits.LimitExceeded` the moment one is crossed. Frames
come out upright: the container's display matrix (rotation by 90/180/270 degrees and mirroring, as
phones record portrait video) is applied to every frame, and :func:`probe` reports the upright size.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Final, TypeVar

import numpy as np

from media.errors import LimitExceeded, MediaError
from media.formats import sniff_kind
from media.image import load_image
from media.limits import DEFAULT_LIMITS, Limits, Meter

__all__ = [
    "DEFAULT_CRF", "Clip", "LimitExceeded", "MediaError", "Planes", "VideoInfo", "iter_frames", "iter_planes",
    "iter_timed_frames", "load_image", "prefetch", "probe", "read_video", "sample_frames", "sniff_kind",
    "upright", "video_source", "write_video",
]

PathLike = str | os.PathLike[str]
T = TypeVar("T")
Source = PathLike | bytes | BinaryIO


@dataclass(frozen=True)
class Clip:
    """Decoded video: ``frames`` is (T, H, W, 3) uint8 RGB; ``audio`` is (channels, samples) float32."""

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None = None
    sample_rate: int = 48_000

    def __post_init__(self) -> None:
        f = self.frames
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            raise MediaError(f"frames must be a (T, H, W, 3) uint8 array, got {getattr(f, 'shape', type(f))}")
        if f.shape[0] < 1:
            raise MediaError("a clip needs at least one frame")
        if not (0 < self.fps <= 240):
            raise MediaError(f"fps must be in (0, 240], got {self.fps}")
        if self.audio is not None:
            a = self.audio
            if a.ndim != 2 or a.dtype != np.float32:
                raise MediaError(f"audio must be a (channels, samples) float32 array, got {a.shape} {a.dtype}")

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def with_frames(self, frames: np.ndarray) -> Clip:
        return Clip(frames=frames, fps=self.fps, audio=self.audio, sample_rate=self.sample_rate)


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header, its first packets and its first frame say. ``width``/``height`` are the
    upright (displayed) size; ``rotation`` is the display matrix's counter-clockwise rotation in degrees
    (0, 90, 180, 270) and ``mirrored`` whether it also flips. ``fps`` is frames a second as the first
    packets' timestamps measure it (:func:`probe`). ``frame_count`` and ``duration_s`` are the header's
    claims (0 when it makes none, as browser-recorded WebM): decoders never rely on them."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    has_audio: bool
    codec: str
    rotation: int = 0
    mirrored: bool = False


def _open(source: Source, limits: Limits | None):  # type: ignore[no-untyped-def]
    """Open a container for reading; with ``limits``, the demuxer refuses more than ``limits.tracks``
    streams while it reads the header (FFmpeg's ``max_streams``), before any stream is set up."""
    import av

    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    options = {"max_streams": str(limits.tracks)} if limits is not None else {}
    try:
        container = av.open(source if not isinstance(source, os.PathLike) else os.fspath(source), mode="r",
                            container_options=options)
    except av.error.MemoryError as e:
        if limits is None:
            raise MediaError(f"not a readable video container: {e}") from e
        # the demuxer's only allocation that fails on a small file is the stream past max_streams
        raise LimitExceeded("tracks", limits.tracks + 1, limits.tracks,
                            f"the container has more than {limits.tracks} tracks (tracks)") from e
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise MediaError(f"not a readable video container: {e}") from e
    if limits is not None and len(container.streams) > limits.tracks:
        container.close()
        limits.check("tracks", len(container.streams), "tracks in the container")
    return container


def _declared(stream, container) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """(fps, duration in seconds, frame count) as the header states them (0 when it does not). The rate is
    FFmpeg's average rate, else its guess (for a WebM without a default duration, the time base: 1000);
    :func:`probe` measures it instead."""
    import av

    rate = stream.average_rate or stream.guessed_rate or Fraction(24)
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    frames = stream.frames or int(round(duration * float(rate)))
    return float(rate), duration, int(frames)


def _deep(stream) -> bool:  # type: ignore[no-untyped-def]
    fmt = stream.codec_context.format
    name = fmt.name if fmt is not None else ""
    return any(depth in name for depth in ("10", "12", "14", "16"))


def _refuse_early(stream, container, limits: Limits) -> None:  # type: ignore[no-untyped-def]
    """Refuse from the header what it already declares too large. Headers may only refuse: a file that
    passes here is still counted frame by frame (a WebM states no duration, an MP4 can state anything)."""
    w, h = stream.codec_context.width, stream.codec_context.height
    if w and h:
        limits.check("frame_pixels", w * h, f"the video's frames are {w}x{h}")
        limits.check("memory_bytes", limits.frame_bytes(w * h, _deep(stream)), f"decoding {w}x{h} video would need")
    _, duration, _ = _declared(stream, container)
    if stream.frames:
        limits.check("frames", stream.frames, "frames declared in the header")
    limits.check("seconds", duration, "duration declared in the header")


#: :func:`probe` reads at most this many video packets to measure the frame rate (6 s at 20 fps, 2 s at 60) ...
_RATE_PACKETS: Final = 120
#: ... ignoring the latest this many timestamps read, which may lie past frames not read yet: a decoder
#: reorders at most 16 frames (H.264's and HEVC's largest decoded picture buffer).
_REORDER: Final = 16
#: A measured rate within this fraction of the header's is the header's (its exact value, 30000/1001 say).
_RATE_AGREES: Final = 0.01


def probe(source: Source, *, limits: Limits | None = DEFAULT_LIMITS) -> VideoInfo:
    """Read stream metadata, the first frame's orientation and the frame rate, without decoding the rest.

    The frame rate (``VideoInfo.fps``) is measured from the presentation timestamps of the first 120 video
    packets: frames counted over the time they span. A browser's MediaRecorder writes variable-rate WebM
    whose header states no rate (FFmpeg then guesses 1000 from the time base, or averages a burst of
    early frames), and drops frames when the machine is busy, so the header cannot be trusted. Where the
    measurement agrees with the header's rate within 1 %, the header's exact value is kept; where the
    packets carry no timestamps, the header's rate is all there is."""
    container = _open(source, limits)
    try:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        vs = container.streams.video[0]
        if limits is not None:
            _refuse_early(vs, container, limits)
        fps, duration, frames = _declared(vs, container)
        w, h = vs.codec_context.width, vs.codec_context.height
        rotation, mirrored = 0, False
        first, stamps, ended = _first_frame(container, vs)
        measured = _measured_rate(stamps, vs.time_base, ended)
        if measured is not None and abs(measured / fps - 1) > _RATE_AGREES:
            fps = measured
        if first is not None:
            w, h = first.width, first.height
            matrix = _display_matrix(first)
            if matrix is not None:
                rotation, mirrored = _describe(matrix)
                if rotation in (90, 270):
                    w, h = h, w
        return VideoInfo(width=w, height=h, fps=fps, frame_count=frames, duration_s=duration,
                         has_audio=bool(container.streams.audio), codec=vs.codec_context.name,
                         rotation=rotation, mirrored=mirrored)
    finally:
        container.close()


def _first_frame(container, stream) -> tuple[Any, list[int], bool]:  # type: ignore[no-untyped-def]
    """The first decodable frame of ``stream`` (``None`` when there is none) and the timestamps of the
    video packets read, at most :data:`_RATE_PACKETS` (more only while no frame has come out yet), with
    whether the stream ended within them. Corrupt data ends the reading, not the probe."""
    first = None
    stamps: list[int] = []
    ended = True
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                stamps.append(int(packet.pts))
            if first is None:
                decoded = packet.decode()
                first = decoded[0] if decoded else None
            if first is not None and len(stamps) >= _RATE_PACKETS:
                ended = False
                break
    except (MediaError, ValueError, OSError, _ffmpeg_error()):
        ended = False
    return first, stamps, ended


def _measured_rate(stamps: list[int], time_base: Fraction | None, ended: bool) -> float | None:
    """Frames a second over the span of the packets' presentation timestamps (in ``time_base`` units),
    or ``None`` when they cannot tell (fewer than 3, no time base, no span). Unless the stream ``ended``
    within them, the latest :data:`_REORDER` timestamps are left out: they may come before frames that
    were not read yet."""
    if time_base is None or not time_base:
        return None
    pts = sorted(stamps)
    if not ended and len(pts) > 2 * _REORDER:
        pts = pts[:-_REORDER]
    if len(pts) < 3 or pts[-1] <= pts[0]:
        return None
    return float(Fraction(len(pts) - 1) / (Fraction(pts[-1] - pts[0]) * time_base))


def _ffmpeg_error() -> type[Exception]:
    import av

    error: type[Exception] = av.error.FFmpegError
    return error


def _decode(source: Source, limits: Limits | None, meter: Meter | None,
            max_frames: int | None = None) -> Generator[tuple[int, object], None, None]:
    """Yield ``(index, av.VideoFrame)`` of the first video stream, counting every limit as it goes."""
    import av

    if meter is not None:
        limits = meter.limits
    container = _open(source, limits)
    try:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        stream = container.streams.video[0]
        fps, _, _ = _declared(stream, container)
        if limits is not None:
            _refuse_early(stream, container, limits)
            stream.codec_context.thread_count = limits.decode_threads
        stream.thread_type = "AUTO"
        index, start, size = 0, None, (0, 0)
        try:
            for frame in container.decode(stream):
                if max_frames is not None and index >= max_frames:
                    break
                if limits is not None:
                    if (frame.width, frame.height) != size:  # the header's size is not trusted either
                        size = (frame.width, frame.height)
                        pixels = frame.width * frame.height
                        limits.check("frame_pixels", pixels, f"frame {index} is {frame.width}x{frame.height}")
                        limits.check("memory_bytes", limits.frame_bytes(pixels, _deep(stream)),
                                     f"decoding {frame.width}x{frame.height} video would need")
                    limits.check("frames", index + 1, "decoded frames")
                    t = frame.time if frame.time is not None else index / fps
                    start = t if start is None else start
                    limits.check("seconds", t - start, "decoded video")
                if meter is not None:
                    meter.add_frame(frame.width * frame.height)
                yield index, frame
                index += 1
        except av.error.FFmpegError as e:
            raise MediaError(f"video data is corrupt at frame {index}: {e}") from e
        if index == 0:
            raise MediaError("the video has no decodable frame")
    finally:
        container.close()


def iter_frames(source: Source, *, every: int = 1, max_frames: int | None = None,
                limits: Limits | None = DEFAULT_LIMITS, meter: Meter | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, rgb_frame)`` for every ``every``-th decoded frame, upright, as (H, W, 3) uint8.

    ``limits`` (``meter.limits`` when a ``meter`` is given, which also counts the work) are enforced
    as the frames are decoded; crossing one raises :class:`~media.limits.LimitExceeded` at once.
    ``max_frames`` stops early without an error. Memory: one frame at a time.
    """
    if every < 1:
        raise ValueError("every must be >= 1")
    reformatter, orientation = _reformatter(), _Orientation()
    for index, frame in _decode(source, limits, meter, max_frames):
        if index % every == 0:
            yield index, upright(frame, reformatter, orientation=orientation)


def iter_timed_frames(source: Source, *, max_frames: int | None = None, limits: Limits | None = DEFAULT_LIMITS,
                      meter: Meter | None = None) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """Yield ``(index, seconds, rgb_frame)`` for every decoded frame, as :func:`iter_frames` (upright, under
    ``limits``, one frame in memory), with the frame's presentation time: its timestamp in seconds
    (``pts * time_base``, from the start of the stream's clock, not necessarily 0 at the first frame), or
    ``None`` for a frame that carries none. A variable-rate recording (a browser's WebM) is timed only by
    these: its frames are not evenly spaced, so an index over a rate is not a time."""
    reformatter = _reformatter()
    for index, frame in _decode(source, limits, meter, max_frames):
        seconds = frame.time  # type: ignore[attr-defined]
        yield index, (float(seconds) if seconds is not None else None), upright(frame, reformatter)


_LUMA_601 = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as libx264's RGB->YUV and cv2's YCrCb
_PLANAR = {"yuv420p": False, "yuvj420p": True}  # 8-bit 4:2:0 formats read from their planes (True: full range)


def _full_range_lut(offset: int, scale: float, centre: int) -> np.ndarray:
    """(256,) uint8: each video-range value ``v`` as ``rint((v - offset) * scale + centre)`` clipped to 0-255, in
    float32 as :meth:`Planes.ycrcb` computed it per pixel (a table of the same arithmetic gives the same bytes)."""
    v = np.arange(256, dtype=np.float32)
    out: np.ndarray = np.clip(np.rint((v - np.float32(offset)) * np.float32(scale) + np.float32(centre)), 0, 255)
    return out.astype(np.uint8)


#: Video range (BT.601: luma 16-235, chroma 16-240 around 128) to full range, per 8-bit value.
_Y_FULL, _C_FULL = _full_range_lut(16, 255 / 219, 0), _full_range_lut(128, 255 / 224, 128)


class Planes:
    """One decoded frame as a reader of luma and thumbnails needs it, without an RGB frame of full size.

    For 8-bit 4:2:0 video (``yuv420p``, ``yuvj420p``: what H.264 and HEVC cameras, phones and encoders write)
    the values come from the stored planes themselves: :attr:`luma` is the Y plane rescaled to full range
    (``(Y - 16) * 255 / 219`` for video range), i.e. BT.601 ``0.299 R + 0.587 G + 0.114 B`` of the frame's
    RGB up to the RGB conversion's rounding; :meth:`ycrcb` area-averages the planes to the size asked and
    gives cv2's full-range YCrCb. Any other pixel format, and frames with a display matrix (turned or
    mirrored), are converted to RGB first (:func:`upright`) and read from it, so every frame is upright.
    ``shape`` is (H, W) upright.
    """

    def __init__(self, frame: Any, reformatter: Any = None, *, orientation: _Orientation | None = None) -> None:
        name = frame.format.name
        matrix = orientation.matrix(frame) if orientation is not None else _display_matrix(frame)
        if name in _PLANAR and matrix is None:
            self._full_range = _PLANAR[name] or getattr(frame, "color_range", 1) == 2
            self._y = _plane(frame, 0, frame.height, frame.width)
            ch, cw = (frame.height + 1) // 2, (frame.width + 1) // 2
            self._cb, self._cr = _plane(frame, 1, ch, cw), _plane(frame, 2, ch, cw)
            self._rgb: np.ndarray | None = None
        else:
            self._rgb = upright(frame, reformatter, orientation=orientation)
        h, w = (self._y.shape if self._rgb is None else self._rgb.shape[:2])
        self.shape: tuple[int, int] = (int(h), int(w))

    @property
    def luma(self) -> np.ndarray:
        """(H, W) float32 full-range BT.601 luma."""
        if self._rgb is not None:
            y: np.ndarray = self._rgb.astype(np.float32) @ _LUMA_601
            return y
        y = self._y.astype(np.float32)
        if not self._full_range:
            y = (y - np.float32(16)) * np.float32(255 / 219)
        return y

    def ycrcb(self, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 full-range YCrCb (cv2's ``COLOR_RGB2YCrCb`` order), area-averaged."""
        import cv2

        if self._rgb is not None:
            small = cv2.resize(np.ascontiguousarray(self._rgb), (width, height), interpolation=cv2.INTER_AREA)
            out: np.ndarray = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)
            return out
        y, cr, cb = (cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA)
                     for p in (self._y, self._cr, self._cb))
        if not self._full_range:
            y, cr, cb = _Y_FULL[y], _C_FULL[cr], _C_FULL[cb]
        merged: np.ndarray = cv2.merge([y, cr, cb])
        return merged

    def rgb(self) -> np.ndarray:
        """The whole frame as (H, W, 3) uint8 RGB (converted on demand for planar frames)."""
        if self._rgb is None:
            import cv2

            ch, cw = self._cb.shape
            yuv = np.empty((self._y.shape[0] + ch, self._y.shape[1]), np.uint8)  # I420 layout for cv2
            h, w = self._y.shape
            yuv[:h] = self._y
            flat = yuv[h:].reshape(-1)
            flat[:ch * cw] = self._cb.reshape(-1)
            flat[ch * cw:2 * ch * cw] = self._cr.reshape(-1)
            self._rgb = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
        return self._rgb


def _plane(frame: Any, index: int, height: int, width: int) -> np.ndarray:
    """Plane ``index`` of an 8-bit planar ``av.VideoFrame`` as a (height, width) uint8 array (its line padding cut)."""
    plane = frame.planes[index]
    data = np.frombuffer(plane, np.uint8)
    return data.reshape(-1, plane.line_size)[:height, :width]


def iter_planes(source: Source, *, max_frames: int | None = None, limits: Limits | None = DEFAULT_LIMITS,
                meter: Meter | None = None, ahead: int = 0, name: str = "decode"
                ) -> Generator[tuple[int, Planes], None, None]:
    """Yield ``(index, Planes)`` for every decoded frame, under ``limits`` as :func:`iter_frames`: for a reader
    of luma and small thumbnails (the watermark's evidence, the fingerprint) this skips the full-size RGB
    conversion, which costs as much as the decode itself (``python -m bench verify``).

    ``ahead`` > 0 decodes on a second thread (named ``name``) ahead of the reader (:func:`prefetch`: ``ahead``
    frames wait in its queue and one more in the decoder's hand, so up to ``ahead + 1`` frames beyond the one being
    read are decoded, and counted by ``meter``; close the iterator to stop it early; what the decoder raises, a
    :class:`~media.limits.LimitExceeded` too, is raised to the reader in order), and makes each :class:`Planes` on
    the reader's thread: the decoding thread then does as little as it can while it holds the interpreter's lock,
    which the reader's work would otherwise keep it waiting for (issue 12, fifth pass: ~4 ms of a 10 s clip's
    verification, docs/performance.md 4e)."""
    reformatter, orientation = _reformatter(), _Orientation()
    frames = (_decode(source, limits, meter, max_frames) if ahead <= 0
              else prefetch(lambda: _decode(source, limits, meter, max_frames), ahead, name=name))
    with contextlib.closing(frames):
        for index, frame in frames:
            yield index, Planes(frame, reformatter, orientation=orientation)


def prefetch(make: Callable[[], Iterator[T]], depth: int = 16, *, name: str = "decode") -> Generator[T, None, None]:
    """Run the iterator ``make()`` on a second thread, up to ``depth + 1`` items ahead of the consumer (``depth`` in the
    queue, one waiting to go in): FFmpeg and the numpy/OpenCV work of a reader both release the GIL, so decoding
    overlaps the reading (two cores: up to twice as fast). Whatever the iterator raises is raised here, in order;
    closing this generator early stops the thread."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in make():
                if not put(item):
                    return
            put(end)
        except BaseException as e:  # handed to the consumer
            put(e)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def sample_frames(source: Source, count: int, *, per_second: float | None = None, max_side: int | None = None,
                  max_frames: int | None = None, limits: Limits | None = DEFAULT_LIMITS,
                  meter: Meter | None = None) -> list[np.ndarray]:
    """Up to ``count`` upright frames spread evenly over the whole video (over its first ``max_frames`` frames
    when given: the rest is not decoded), in bounded memory.

    ``per_second`` takes at most that many frames a second as candidates (by their timestamps), so a
    short clip gives few frames. The length is not trusted from the header: every frame is decoded
    (under ``limits``) and at most ``2 * count`` candidates are kept at a time, dropping every other one
    (and doubling the stride) when full. ``max_side`` shrinks the kept frames (area averaging) so that
    their longer side is at most that.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    kept: list[np.ndarray] = []
    stride, candidates, due = 1, 0, None
    reformatter, orientation = _reformatter(), _Orientation()
    for index, frame in _decode(source, limits, meter, max_frames):
        if per_second is not None:
            t = frame.time if frame.time is not None else index / 30.0  # type: ignore[attr-defined]
            if due is not None and t < due:
                continue
            due = (t if due is None else due) + 1.0 / per_second
        candidates += 1
        if (candidates - 1) % stride:
            continue
        kept.append(_shrink(upright(frame, reformatter, orientation=orientation), max_side))
        if len(kept) >= 2 * count:
            kept = kept[::2]
            stride *= 2
    if len(kept) <= count:
        return kept
    picks = np.linspace(0, len(kept) - 1, count).round().astype(int)
    return [kept[i] for i in picks]


def _shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(rgb.shape[:2]) <= max_side:
        return rgb
    import cv2

    scale = max_side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _reformatter() -> Any:
    """One colour converter for a whole decode: PyAV's ``to_ndarray`` builds a new one per frame, which
    costs more than decoding small frames (1.4 ms a frame; measured 7x slower on 640x360)."""
    from av.video.reformatter import VideoReformatter

    return VideoReformatter()


def upright(frame, reformatter=None, *, orientation=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """An ``av.VideoFrame`` as (H, W, 3) uint8 RGB, turned and mirrored as its display matrix says (read through
    ``orientation``, the decode's :class:`_Orientation`, when the caller decodes many frames)."""
    rgb: np.ndarray = (reformatter or _reformatter()).reformat(frame, format="rgb24").to_ndarray()
    matrix = orientation.matrix(frame) if orientation is not None else _display_matrix(frame)
    return rgb if matrix is None else orient(rgb, matrix)


class _Orientation:
    """The display matrices of the frames of one decode, read without holding every frame until the garbage
    collector runs.

    Reading a frame's side data (``frame.side_data``) ties the frame into a reference cycle: PyAV keeps the
    container of side data on the frame, and the container points back to it. The frame, and the decoder's picture
    buffer it holds, then outlive the reader's last reference until a full collection: verifying the 10 s 512p clip
    so held all 240 decoded frames (~90 MB), the decoder could not reuse its buffers, and the next verification
    allocated and faulted in fresh ones (issue 12, docs/performance.md section 4c). So the side data is
    read for the first frame, and again only for a frame whose rotation differs from the last one read
    (``frame.rotation``: PyAV reads it from the same matrix without making Python objects). The matrix is the
    stream's (an MP4's ``tkhd``, which the decoder attaches to every frame) in every video seen here; a mirror
    that a stream would switch on or off in mid-stream without turning would go unseen."""

    def __init__(self) -> None:
        self._rotation: int | None = None
        self._matrix: np.ndarray | None = None

    def matrix(self, frame: Any) -> np.ndarray | None:
        """The display matrix of ``frame`` (as :func:`_display_matrix`), or None when it has none."""
        rotation = int(frame.rotation)
        if rotation != self._rotation:
            self._rotation, self._matrix = rotation, _display_matrix(frame)
        return self._matrix


def _display_matrix(frame) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    for sd in frame.side_data:
        if sd.type.name == "DISPLAYMATRIX":
            m = np.frombuffer(bytes(sd), dtype="<i4")
            return m if m.size == 9 else None
    return None


def orient(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a display matrix (FFmpeg's 3x3 layout, 16.16 fixed point) to an (H, W, ...) image.

    The matrix maps a stored pixel (x, y) to (a*x + c*y, b*x + d*y) on screen, where (a, b, c, d) are
    entries 0, 1, 3 and 4. Only the eight quarter-turn and mirror cases exist in practice (phones write
    them; any other angle is snapped to the nearest quarter turn). Checked against a portrait video
    recorded sideways and the same frames stored upright (tests/media/test_orientation.py).
    """
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    out = rgb
    if abs(a) + abs(d) >= abs(b) + abs(c):
        if a < 0:
            out = out[:, ::-1]
        if d < 0:
            out = out[::-1]
    else:
        out = out.swapaxes(0, 1)
        if b < 0:
            out = out[::-1]
        if c < 0:
            out = out[:, ::-1]
    return out if out is rgb else np.ascontiguousarray(out)


def _describe(matrix: np.ndarray) -> tuple[int, bool]:
    """(counter-clockwise rotation in degrees, mirrored) of a display matrix, as ffprobe names them."""
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    mirrored = a * d - b * c < 0
    if mirrored:  # mirror first (negate the first column), then read the rotation
        a, c = -a, -c
    angle = int(round(np.degrees(np.arctan2(b, a)) / 90.0)) * 90 % 360
    return (360 - angle) % 360, bool(mirrored)


def read_video(source: Source, *, max_frames: int | None = None, with_audio: bool = True,
               limits: Limits | None = DEFAULT_LIMITS, meter: Meter | None = None) -> Clip:
    """Decode a whole video (upright) and its first audio stream (float32 planar), under ``limits``.

    The clip is held in memory (T x H x W x 3 bytes), so ``limits.memory_bytes`` bounds the whole clip,
    not only one frame; stream with :func:`iter_frames` instead when the frames can be used one by one.
    """
    if meter is not None:
        limits = meter.limits
    if isinstance(source, (bytes, io.IOBase)) and with_audio:
        data = source if isinstance(source, bytes) else source.read()
        frames_src: Source = data
        audio_src: Source = data
    else:
        frames_src = audio_src = source
    info = probe(io.BytesIO(frames_src) if isinstance(frames_src, bytes) else frames_src, limits=limits)
    frames: list[np.ndarray] = []
    held = 0
    for _, f in iter_frames(io.BytesIO(frames_src) if isinstance(frames_src, bytes) else frames_src,
                            max_frames=max_frames, limits=limits, meter=meter):
        held += f.nbytes
        if limits is not None:
            limits.check("memory_bytes", held, "holding the decoded clip needs")
        frames.append(f)
    audio, sr = (None, 48_000)
    if with_audio and info.has_audio:
        audio, sr = _read_audio(io.BytesIO(audio_src) if isinstance(audio_src, bytes) else audio_src, limits)
    return Clip(frames=np.stack(frames), fps=info.fps, audio=audio, sample_rate=sr)


def _read_audio(source: Source, limits: Limits | None = DEFAULT_LIMITS) -> tuple[np.ndarray | None, int]:
    import av

    container = _open(source, limits)
    try:
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or 48_000
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=sr)
        chunks = []
        try:
            start = None
            for frame in container.decode(stream):
                if limits is not None and frame.time is not None:
                    start = frame.time if start is None else start
                    limits.check("seconds", frame.time - start, "decoded audio")
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
        except av.error.FFmpegError as e:
            raise MediaError(f"audio data is corrupt: {e}") from e
        if not chunks:
            return None, sr
        return np.concatenate(chunks, axis=1).astype(np.float32), sr
    finally:
        container.close()


#: H.264 constant rate factor of what this module encodes unless told otherwise: 18, the point FFmpeg's H.264
#: encoding guide calls visually lossless ("consider 17 or 18 to be visually lossless"). Releases are encoded at
#: it, and the watermark's robustness in docs/watermark.md was measured on releases at it.
DEFAULT_CRF: Final = 18


def write_video(
    path: PathLike,
    clip: Clip,
    *,
    codec: str = "libx264",
    crf: int = DEFAULT_CRF,
    preset: str = "medium",
    metadata: dict[str, str] | None = None,
    mode: int | None = None,
) -> None:
    """Encode ``clip`` as MP4 (H.264/H.265 yuv420p, AAC audio when present). Writes atomically: a partial
    file never stays behind, whatever fails (a full disk included). ``mode`` (say ``0o600``) sets the
    file's permissions whatever the umask."""
    import av

    path = Path(path)
    if clip.width % 2 or clip.height % 2:
        raise MediaError(f"H.264 needs even frame sides, got {clip.width}x{clip.height}")
    tmp = path.with_name(f".{path.name}.part")
    rate = Fraction(clip.fps).limit_denominator(1001)
    try:
        if mode is not None:  # FFmpeg truncates the file made here and keeps its mode
            os.close(_create(tmp, mode))
        with av.open(str(tmp), mode="w", format="mp4") as out:
            if metadata:
                out.metadata.update(metadata)
            vs = out.add_stream(codec, rate=rate)
            assert isinstance(vs, av.video.stream.VideoStream)
            vs.width, vs.height, vs.pix_fmt = clip.width, clip.height, "yuv420p"
            vs.options = {"crf": str(crf), "preset": preset}
            if codec == "libx265":
                vs.options["x265-params"] = "log-level=error"
            aus = None
            if clip.audio is not None:
                aus = out.add_stream("aac", rate=clip.sample_rate)
                assert isinstance(aus, av.audio.stream.AudioStream)
                aus.layout = "mono" if clip.audio.shape[0] == 1 else "stereo"
            for i in range(clip.frame_count):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(clip.frames[i]), format="rgb24")
                frame.pts = i
                frame.time_base = 1 / rate
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
            if aus is not None and clip.audio is not None:
                audio = np.ascontiguousarray(np.clip(clip.audio, -1.0, 1.0).astype(np.float32))
                layout = "mono" if audio.shape[0] == 1 else "stereo"
                chunk = 1024
                for start in range(0, audio.shape[1], chunk):
                    af = av.AudioFrame.from_ndarray(audio[:, start:start + chunk], format="fltp", layout=layout)
                    af.sample_rate = clip.sample_rate
                    af.pts = start
                    for packet in aus.encode(af):
                        out.mux(packet)
                for packet in aus.encode():
                    out.mux(packet)
        os.replace(tmp, path)
    except av.error.FFmpegError as e:  # its message names the file: keep the cause only
        raise MediaError(f"could not encode video: {getattr(e, 'strerror', None) or e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()


def _create(path: Path, mode: int) -> int:
    """Open ``path`` for writing, created or truncated, with ``mode`` whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def video_source(source: Source) -> str | io.BytesIO:
    """Accept a video given as a path, bytes or a binary stream, for the decoders above.

    Refuses, with a one-line :class:`MediaError`, what is certainly not a video: a missing or unreadable
    path, zero bytes, a still image. (Anything else is left to the decoder, which says what it found.)
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as fh:
                head = fh.read(64)
        except OSError as e:
            raise MediaError(f"cannot read {path!r}: {e.strerror or e}") from e
        src: str | io.BytesIO = path
    elif isinstance(source, (bytes, bytearray)):
        head, src = bytes(source[:64]), io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        data = source.read()
        head, src = data[:64], io.BytesIO(data)
    else:
        raise MediaError(f"expected a video path, bytes or a binary stream, got {type(source).__name__}")
    if not head:
        raise MediaError("the file is empty (zero bytes)")
    kind = sniff_kind(head)
    if kind == "image":
        raise MediaError("the file is an image, not a video: a still image has no frames over time")
    if kind in ("audio", "document"):
        raise MediaError(f"the file is {'an' if kind == 'audio' else 'a'} {kind} file, not a video")
    return src

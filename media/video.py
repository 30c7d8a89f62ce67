"""Video and image decode/encode: the one place in ConsentGate that opens media containers.

Everything else works on :class:`Clip` values (RGB frames as one numpy array, plus optional audio)::

    >>> import numpy as np
    >>> from media.video import Clip, write_video, read_video
    >>> clip = Clip(frames=np.zeros((24, 64, 64, 3), np.uint8), fps=24.0)
    >>> write_video("/tmp/black.mp4", clip)
    >>> read_video("/tmp/black.mp4").frames.shape
    (24, 64, 64, 3)
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

PathLike = str | os.PathLike[str]
Source = PathLike | bytes | BinaryIO


class MediaError(Exception):
    """The input could not be read or written as the expected kind of media."""


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
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    has_audio: bool
    codec: str


def _open(source: Source):  # type: ignore[no-untyped-def]
    import av

    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        return av.open(source if not isinstance(source, os.PathLike) else os.fspath(source), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise MediaError(f"not a readable video container: {e}") from e


def probe(source: Source) -> VideoInfo:
    """Read stream metadata without decoding every frame."""
    import av

    container = _open(source)
    try:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        vs = container.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or Fraction(24)
        duration = 0.0
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frames = vs.frames or int(round(duration * float(rate)))
        return VideoInfo(
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            fps=float(rate),
            frame_count=int(frames),
            duration_s=duration,
            has_audio=bool(container.streams.audio),
            codec=vs.codec_context.name,
        )
    finally:
        container.close()


def iter_frames(source: Source, *, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, rgb_frame)`` for every ``every``-th decoded frame."""
    import av

    if every < 1:
        raise ValueError("every must be >= 1")
    container = _open(source)
    try:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                if max_frames is not None and index >= max_frames:
                    break
                if index % every == 0:
                    yield index, frame.to_ndarray(format="rgb24")
                index += 1
        except av.error.FFmpegError as e:
            raise MediaError(f"video data is corrupt at frame {index}: {e}") from e
        if index == 0:
            raise MediaError("the video has no decodable frame")
    finally:
        container.close()


def read_video(source: Source, *, max_frames: int | None = None, with_audio: bool = True) -> Clip:
    """Decode a whole video (and its first audio stream, resampled to float32 planar)."""
    if isinstance(source, (bytes, io.IOBase)) and with_audio:
        data = source if isinstance(source, bytes) else source.read()
        frames_src: Source = data
        audio_src: Source = data
    else:
        frames_src = audio_src = source
    info = probe(frames_src if not isinstance(frames_src, bytes) else io.BytesIO(frames_src))
    frames = [f for _, f in iter_frames(frames_src if not isinstance(frames_src, bytes) else io.BytesIO(frames_src),
                                        max_frames=max_frames)]
    audio, sr = (None, 48_000)
    if with_audio and info.has_audio:
        audio, sr = _read_audio(audio_src if not isinstance(audio_src, bytes) else io.BytesIO(audio_src))
    return Clip(frames=np.stack(frames), fps=info.fps, audio=audio, sample_rate=sr)


def _read_audio(source: Source) -> tuple[np.ndarray | None, int]:
    import av

    container = _open(source)
    try:
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or 48_000
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=sr)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
        except av.error.FFmpegError as e:
            raise MediaError(f"audio data is corrupt: {e}") from e
        if not chunks:
            return None, sr
        return np.concatenate(chunks, axis=1).astype(np.float32), sr
    finally:
        container.close()


def write_video(
    path: PathLike,
    clip: Clip,
    *,
    codec: str = "libx264",
    crf: int = 18,
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


def remux(src: PathLike, dst: PathLike) -> None:
    """Copy the streams into a new MP4 without re-encoding (drops container-level boxes such as C2PA)."""
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


def save_clip_lossless(path: PathLike, clip: Clip, *, mode: int = 0o600) -> None:
    """Store a clip exactly (quarantine format): compressed npz, written atomically with ``mode`` whatever
    the umask. On any error (a full disk included) the partial file is removed and the error raised."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    arrays = {"frames": clip.frames, "fps": np.array(clip.fps), "sample_rate": np.array(clip.sample_rate)}
    if clip.audio is not None:
        arrays["audio"] = clip.audio
    try:
        with os.fdopen(_create(tmp, mode), "wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_clip_lossless(path: PathLike) -> Clip:
    with np.load(os.fspath(path)) as data:
        audio = data["audio"] if "audio" in data.files else None
        return Clip(frames=data["frames"], fps=float(data["fps"]), audio=audio, sample_rate=int(data["sample_rate"]))


def load_image(source: Source) -> np.ndarray:
    """Decode a still image to (H, W, 3) uint8 RGB, honouring EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with Image.open(source) as opened:
            upright = ImageOps.exif_transpose(opened)
            return np.asarray(upright.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError as e:  # its message names the stream object: say what it means instead
        raise MediaError("not a readable image: no image format recognised") from e
    except Image.DecompressionBombError as e:
        raise MediaError(f"not a readable image: {e}") from e
    except OSError as e:
        raise MediaError(f"not a readable image: {e}") from e


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
    if sniff_kind(head) == "image":
        raise MediaError("the file is an image, not a video: a still image has no frames over time")
    return src


def sniff_kind(head: bytes) -> str | None:
    """Classify a file by its first bytes: ``"image"``, ``"video"`` or ``None``."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"uuid"):
        return "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return "video"
    return None

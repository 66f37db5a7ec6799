"""Streaming decode: one frame at a time, never the whole clip in memory."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from vidmatte.media._errors import media_error
from vidmatte.media._probe import frame_rate

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["DecodedFrame", "VideoReader", "read_frames_rgba"]

PNG_NAME = re.compile(r"^frame_(\d+)\.png$")


@attrs.frozen
class DecodedFrame:
    """One decoded frame: its index, full-resolution RGB, and an optional small RGB copy.

    ``rgb`` is ``None`` when the reader was built with ``rgb=False``: the frame
    is then still in ``source`` (YUV), and :func:`frame_rgb` converts it when
    someone needs it (alpha and MP4 outputs of 4:2:0 sources never do).
    """

    index: int
    rgb: NDArray[np.uint8] | None
    small: NDArray[np.uint8] | None = None
    time: float = 0.0
    gray: NDArray[np.uint8] | None = None
    """Full-resolution luma (when the reader was asked for it)."""
    small_gray: NDArray[np.float32] | None = None
    """Luma of ``small`` in 0..1 (when asked for)."""
    source: Any = attrs.field(default=None, repr=False, eq=False)
    """The decoded ``av.VideoFrame`` (unrotated frames only): writers reuse its YUV planes."""
    width: int = 0
    height: int = 0


_local = threading.local()


def frame_rgb(frame: DecodedFrame) -> NDArray[np.uint8]:
    """``frame``'s full-resolution RGB, converted from its source now if the reader skipped it.

    Each thread keeps its own scaler (they are not thread-safe, and rebuilding
    one per frame is several times slower than the conversion itself).
    """
    if frame.rgb is not None:
        return frame.rgb
    reformatter = getattr(_local, "rgb", None)
    if reformatter is None:
        from av.video.reformatter import VideoReformatter

        reformatter = _local.rgb = VideoReformatter()
    return _array(reformatter, frame.source, format="rgb24")


def _rotate(array: NDArray[np.uint8], rotation: int) -> NDArray[np.uint8]:
    import numpy as np

    # The display matrix angle is counter-clockwise; np.rot90 turns counter-clockwise too.
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def small_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """(width, height) scaled so the longer side is ``max_side`` (None when no scaling is needed)."""
    if not max_side or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(2, round(width * scale)), max(2, round(height * scale))


class VideoReader:
    """Decodes a video file frame by frame as RGB arrays.

    ``rgb=False`` skips the full-resolution RGB (see :class:`DecodedFrame`).
    ``max_side`` also delivers a small copy of each frame (longer side
    ``max_side``), scaled by FFmpeg while the frame is still in YUV: cheaper
    than scaling the RGB array.  ``trim`` keeps only frames in ``[start, end)``
    seconds.  Decoding errors become one-line :class:`~vidmatte.errors.MediaError`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_side: int | None = None,
        trim: tuple[float, float] | None = None,
        threads: bool = True,
        luma: bool = False,
        rgb: bool = True,
    ) -> None:
        import av

        self.path = Path(path)
        try:
            self._container: Any = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise media_error(self.path, "not a readable video (corrupt, truncated or not a video)", exc) from None
        if not self._container.streams.video:
            self._container.close()
            raise media_error(self.path, "contains no video stream")
        self._stream = self._container.streams.video[0]
        if threads:
            # Frame threading: the decoder uses the second core while we segment and encode.
            self._stream.thread_type = "AUTO"
        self.fps: Fraction = frame_rate(self._stream)
        self.width = int(self._stream.codec_context.width)
        self.height = int(self._stream.codec_context.height)
        self.max_side = max_side
        self.trim = trim
        self.luma = luma
        self.rgb = rgb
        from av.video.reformatter import VideoReformatter

        # One reformatter per conversion: each keeps its scaler, which a frame's own
        # to_ndarray() would rebuild for every frame (several times slower).
        self._to_rgb = VideoReformatter()
        self._to_small = VideoReformatter()
        self._to_gray = VideoReformatter()
        self._to_small_gray = VideoReformatter()
        self._frames: Iterator[Any] | None = None
        self._index = 0
        self._done = False

    def _decoded(self) -> Iterator[Any]:
        import av

        try:
            yield from self._container.decode(self._stream)
        except (av.FFmpegError, OSError) as exc:
            raise media_error(self.path, "video cannot be decoded (corrupt or truncated)", exc) from None

    def _convert(self, frame: Any) -> DecodedFrame:
        import numpy as np

        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        # Rotated frames are turned here, so they need their RGB now.
        rgb = _array(self._to_rgb, frame, format="rgb24") if self.rgb or rotation else None
        small = None
        small_gray = None
        target = small_size(frame.width, frame.height, self.max_side)
        if target is not None:
            small = _array(self._to_small, frame, width=target[0], height=target[1], format="rgb24")
        elif self.max_side:
            small = rgb if rgb is not None else _array(self._to_small, frame, format="rgb24")
        gray = _array(self._to_gray, frame, format="gray") if self.luma else None
        if self.luma and small is not None:
            if target is None:
                small_gray = gray
            else:
                small_gray = _array(self._to_small_gray, frame, width=target[0], height=target[1], format="gray")
        if rotation:
            assert rgb is not None
            rgb = _rotate(rgb, rotation)
            small = _rotate(small, rotation) if small is not None else None
            gray = _rotate(gray, rotation) if gray is not None else None
            small_gray = _rotate(small_gray, rotation) if small_gray is not None else None
        small_luma = small_gray.astype(np.float32) * np.float32(1 / 255) if small_gray is not None else None
        time = float(frame.time) if frame.time is not None else self._index / float(self.fps)
        width, height = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
        source = None if rotation else frame
        decoded = DecodedFrame(self._index, rgb, small, time, gray, small_luma, source, width, height)
        self._index += 1
        return decoded

    def read(self, count: int) -> list[DecodedFrame]:
        """Up to ``count`` next frames (an empty list at the end)."""
        if self._done:
            return []
        if self._frames is None:
            self._frames = self._decoded()
        out: list[DecodedFrame] = []
        start, end = self.trim if self.trim else (None, None)
        while len(out) < count:
            frame = next(self._frames, None)
            if frame is None:
                self._done = True
                break
            if start is not None and frame.time is not None and frame.time < start - 1e-6:
                continue
            if end is not None and frame.time is not None and frame.time >= end - 1e-6:
                self._done = True
                break
            out.append(self._convert(frame))
        return out

    def __iter__(self) -> Iterator[DecodedFrame]:
        while batch := self.read(8):
            yield from batch

    def close(self) -> None:
        """Close the file."""
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _array(reformatter: Any, frame: Any, **how: Any) -> NDArray[np.uint8]:
    """``frame`` converted by ``reformatter`` (which keeps its scaler between frames), as an array."""
    array: NDArray[np.uint8] = reformatter.reformat(frame, **how).to_ndarray()
    return array


def _png_rgba(data: bytes, name: str) -> NDArray[np.uint8]:
    import av

    try:
        container: Any = av.open(io.BytesIO(data), format="png_pipe")
        with container:
            frame = next(container.decode(video=0))
            rgba: NDArray[np.uint8] = frame.to_ndarray(format="rgba")
            return rgba
    except (av.FFmpegError, StopIteration) as exc:
        raise media_error(name, "not a readable PNG", exc if isinstance(exc, av.FFmpegError) else None) from None


def _sorted_pngs(names: list[str]) -> list[str]:
    found = [(int(m.group(1)), n) for n in names if (m := PNG_NAME.match(Path(n).name))]
    return [n for _, n in sorted(found)]


def read_frames_rgba(path: str | Path) -> Iterator[NDArray[np.uint8]]:
    """Every frame of an output, as H x W x 4 RGBA ``uint8`` arrays, one at a time.

    Reads every format vidmatte writes: WebM VP9 with alpha (through the
    ``libvpx-vp9`` decoder, since FFmpeg's native VP9 decoder drops the alpha
    plane), ProRes 4444 MOV, H.264 MP4 and matte videos (alpha 255), a folder
    of PNGs, or a zip of PNGs.
    """
    p = Path(path)
    if p.is_dir():
        for name in _sorted_pngs([c.name for c in p.iterdir()]):
            yield _png_rgba((p / name).read_bytes(), str(p / name))
        return
    if p.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(p)
        except (OSError, zipfile.BadZipFile) as exc:
            raise media_error(p, "not a readable zip of PNG frames", exc) from None
        with archive:
            for name in _sorted_pngs(archive.namelist()):
                yield _png_rgba(archive.read(name), f"{p}:{name}")
        return
    yield from _video_rgba(p)


def _video_rgba(path: Path) -> Iterator[NDArray[np.uint8]]:
    import av

    container: Any
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise media_error(path, "not a readable video", exc) from None
    with container:
        if not container.streams.video:
            raise media_error(path, "contains no video stream")
        stream = container.streams.video[0]
        try:
            if stream.codec_context.name == "vp9":
                decoder = av.CodecContext.create("libvpx-vp9", "r")
                for packet in container.demux(stream):
                    for frame in decoder.decode(packet):
                        yield _as_rgba(frame)
            else:
                for frame in container.decode(stream):
                    yield _as_rgba(frame)
        except av.FFmpegError as exc:
            raise media_error(path, "video cannot be decoded (corrupt or truncated)", exc) from None


def _as_rgba(frame: Any) -> NDArray[np.uint8]:
    rgba: NDArray[np.uint8] = frame.to_ndarray(format="rgba")
    return rgba

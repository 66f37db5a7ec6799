"""The demo clip, made locally: a real photo of a person moving over a moving background."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmatte.errors import MediaError
from vidmatte.media._encode import temporary_sibling
from vidmatte.media._errors import media_error

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["make_sample_clip", "sample_person_box"]


def _astronaut() -> NDArray[np.uint8]:
    try:
        from skimage import data
    except ImportError:
        raise MediaError(
            "the sample clip needs scikit-image (it ships the photo used): "
            "pip install -e plugins/local, or pip install scikit-image"
        ) from None
    photo: NDArray[np.uint8] = data.astronaut()  # type: ignore[no-untyped-call]
    return photo


def _person_layout(width: int, height: int) -> tuple[int, int]:
    """(side of the square photo, its top row): the photo spans most of the frame height."""
    side = max(16, int(height * 0.9)) // 2 * 2
    return side, height - side


def sample_person_box(
    index: int, *, fps: int = 25, size: tuple[int, int] = (640, 360), seconds: float = 4.0
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the photo in frame ``index`` of :func:`make_sample_clip`.

    Tests use it to know where the person is: the astronaut's head and torso
    fill the middle of the photo.
    """
    width, height = size
    side, top = _person_layout(width, height)
    travel = max(0, width - side)
    phase = index / max(1, seconds * fps)
    left = int(travel * (0.5 - 0.5 * math.cos(2 * math.pi * phase)))
    return left, top, left + side, top + side


class _Backdrop:
    """Diagonal stripes and a colour ramp, drawn once; each frame is a shifted window of it."""

    def __init__(self, width: int, height: int, travel: int) -> None:
        import numpy as np

        self.width = width
        self.period = 48  # two 24 px stripes
        wide = width + self.period
        y, x = np.mgrid[0:height, 0:wide]
        stripes = ((x + y) // 24) % 2
        canvas = np.empty((height, wide, 3), np.uint8)
        canvas[..., 0] = 40 + 60 * stripes + (x * 60) // max(1, wide)
        canvas[..., 1] = 90 + 50 * stripes
        canvas[..., 2] = 150 - 50 * stripes + (y * 60) // max(1, height)
        self.canvas = canvas

    def frame(self, index: int, static: bool) -> NDArray[np.uint8]:
        shift = 0 if static else (index * 3) % self.period
        window: NDArray[np.uint8] = self.canvas[:, shift : shift + self.width].copy()
        return window


def make_sample_clip(
    path: Path,
    *,
    seconds: float = 4.0,
    fps: int = 25,
    size: tuple[int, int] = (640, 360),
    audio: bool = True,
    static_background: bool = False,
) -> Path:
    """Write a short H.264 clip (plus an AAC tone) to ``path`` and return ``path``.

    scikit-image's astronaut photo (a person) slides left and right over
    moving diagonal stripes; ``static_background=True`` keeps the stripes
    still (for the static-camera mode).  Nothing is downloaded.  The
    container follows the extension (``.mp4``, ``.mov``, ``.mkv``, ``.webm``).
    """
    import av
    import numpy as np

    path = Path(path)
    width, height = size[0] - size[0] % 2, size[1] - size[1] % 2
    side, _ = _person_layout(width, height)
    photo = av.VideoFrame.from_ndarray(_astronaut(), format="rgb24")
    person = photo.reformat(width=side, height=side).to_ndarray()
    frames = max(1, round(seconds * fps))
    tmp = temporary_sibling(path)
    suffix = path.suffix.lower()
    muxer = {".webm": "webm", ".mkv": "matroska", ".mov": "mov"}.get(suffix, "mp4")
    vcodec = "libvpx-vp9" if muxer == "webm" else "libx264"
    acodec = "libopus" if muxer == "webm" else "aac"
    try:
        container: Any = av.open(str(tmp), "w", format=muxer)
    except (av.FFmpegError, OSError) as exc:
        raise media_error(path, "cannot be written", exc) from None
    try:
        stream = container.add_stream(vcodec, rate=fps, options={"preset": "superfast", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = os.cpu_count() or 2
        astream = None
        rate = 48000
        if audio:
            astream = container.add_stream(acodec, rate=rate, layout="mono")
        afmt = "flt" if acodec == "libopus" else "fltp"
        samples_per_frame = rate // fps
        sample_index = 0
        backdrop = _Backdrop(width, height, 0)
        for index in range(frames):
            picture = backdrop.frame(index, static_background)
            left, top, right, bottom = sample_person_box(index, fps=fps, size=(width, height), seconds=seconds)
            picture[top:bottom, left:right] = person
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
            if astream is not None:
                t = (sample_index + np.arange(samples_per_frame)) / rate
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                sample_index += samples_per_frame
                aframe = av.AudioFrame.from_ndarray(tone, format=afmt, layout="mono")
                aframe.sample_rate = rate
                aframe.pts = None
                container.mux(astream.encode(aframe))
        container.mux(stream.encode(None))
        if astream is not None:
            container.mux(astream.encode(None))
        container.close()
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path

"""Re-encoding a finished result (from a remote backend) into the requested output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from vidmatte._models import OutputSpec
from vidmatte.media._decode import VideoReader, frame_rgb, read_frames_rgba
from vidmatte.media._encode import FrameWriter, open_writer
from vidmatte.media._errors import media_error
from vidmatte.media._probe import probe

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["convert"]


def _frames(src: Path, matte_source: Path | None) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    """(RGB, alpha) pairs: from an alpha video, or from a matte video plus the original source."""
    if matte_source is None:
        for rgba in read_frames_rgba(src):
            yield rgba[..., :3], rgba[..., 3]
        return
    with VideoReader(matte_source) as original:
        for rgba, frame in zip(read_frames_rgba(src), original, strict=False):
            # A matte video stores the matte as luma: any colour channel is it.
            yield frame_rgb(frame), rgba[..., 0]


def convert(
    src: Path,
    dest: Path,
    output: OutputSpec,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    matte_source: Path | None = None,
) -> None:
    """Re-encode ``src`` (an alpha-carrying video, or a PNG folder/zip) into ``output`` at ``dest``.

    Frame rate and audio come from ``src`` (audio kept when the output format
    holds audio and ``output.keep_audio``).  When ``src`` is a matte video,
    pass the original video as ``matte_source``: its pictures are combined with
    the matte.  ``dest`` appears only when complete.  ``on_progress(done, total)``
    is called as frames are written.
    """
    src, dest = Path(src), Path(dest)
    is_video = src.is_file() and src.suffix.lower() != ".zip"
    fps: Fraction | float = 25
    total = 0
    audio_from: Path | None = None
    if is_video:
        info = probe(src)
        fps = Fraction(info.fps).limit_denominator(1001)
        total = info.frame_count
        audio_from = src if info.has_audio else None
        if matte_source is not None:
            source_info = probe(matte_source)
            audio_from = matte_source if source_info.has_audio else None
    elif not src.exists():
        raise media_error(src, "no such file or folder")
    writer: FrameWriter | None = None
    done = 0
    try:
        for rgb, alpha in _frames(src, matte_source):
            if writer is None:
                height, width = alpha.shape[:2]
                writer = open_writer(dest, output, width=width, height=height, fps=fps, audio_from=audio_from)
            writer.write(rgb, alpha)
            done += 1
            if on_progress is not None:
                on_progress(done, max(total, done))
        if writer is None:
            raise media_error(src, "contains no frames")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise

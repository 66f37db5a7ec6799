"""Probing a video: what it is, before any work or money is spent on it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from vidmatte._models import MediaInfo
from vidmatte.media._errors import media_error

__all__ = ["frame_rate", "probe"]

DEFAULT_FPS = Fraction(25)


def frame_rate(stream: Any) -> Fraction:
    """The stream's frame rate as a fraction (average, then guessed, then 25)."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = Fraction(rate)
            if 0 < value <= 1000:
                return value
    return DEFAULT_FPS


def probe(path: str | Path) -> MediaInfo:
    """Duration, frame rate, frame count, size, rotation and audio of the video at ``path``.

    Width and height are as displayed (after the rotation the file asks for).
    The duration comes from the video stream, or from the container when the
    stream does not carry one (WebM).  The first frame is decoded, so a file
    that opens but holds no decodable picture is caught here.  Raises a one-line
    :class:`~vidmatte.errors.MediaError` for a missing file, something that is
    not a video, a corrupt or truncated file, or a video without frames.
    """
    import av

    p = Path(path)
    if not p.exists():
        raise media_error(p, "no such file")
    if p.is_dir():
        raise media_error(p, "is a folder, not a video file")
    size = p.stat().st_size
    if size == 0:
        raise media_error(p, "is empty, not a video")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError) as exc:
        raise media_error(p, "not a readable video (corrupt, truncated or not a video)", exc) from None
    with container:
        if not container.streams.video:
            raise media_error(p, "contains no video stream")
        stream = container.streams.video[0]
        fps = frame_rate(stream)
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        if duration <= 0:
            # Matroska/WebM keeps a per-track DURATION tag ("00:00:04.000000000").
            duration = _tag_seconds(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
        if duration <= 0 and container.duration:
            duration = container.duration / 1_000_000
        frame_count = int(stream.frames or 0)
        if frame_count <= 0 and duration > 0:
            frame_count = round(duration * fps)
        if duration <= 0 and frame_count > 0:
            duration = frame_count / float(fps)
        rotation = 0
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, OSError) as exc:
            raise media_error(p, "video cannot be decoded (corrupt or truncated)", exc) from None
        if first is None:
            raise media_error(p, "contains no video frames")
        rotation = int(getattr(first, "rotation", 0) or 0) % 360
        width, height = first.width, first.height
        if rotation in (90, 270):
            # Reported as displayed: the decoder's frames are turned upright.
            width, height = height, width
        audio = container.streams.audio[0] if container.streams.audio else None
        return MediaInfo(
            duration=duration,
            fps=float(fps),
            frame_count=max(frame_count, 1),
            width=width,
            height=height,
            rotation=rotation,
            has_audio=audio is not None,
            video_codec=stream.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            size_bytes=size,
        )


def _tag_seconds(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        hours, minutes, seconds = value.strip().split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0

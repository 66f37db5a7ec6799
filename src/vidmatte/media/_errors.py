"""Turning PyAV/FFmpeg failures into one-line :class:`~vidmatte.errors.MediaError` messages."""

from __future__ import annotations

from pathlib import Path

from vidmatte.errors import MediaError

__all__ = ["media_error"]


def media_error(path: str | Path, problem: str, exc: BaseException | None = None) -> MediaError:
    """A one-line error naming the file and the problem (FFmpeg's reason appended, newlines folded)."""
    detail = ""
    if exc is not None:
        reason = getattr(exc, "strerror", None) or str(exc)
        reason = " ".join(str(reason).split())
        # FFmpeg repeats the file name in its messages; we already lead with it.
        reason = reason.replace(f": '{path}'", "").replace(f"'{path}'", "").strip(" :;")
        if reason:
            detail = f" ({reason})"
    return MediaError(f"{path}: {problem}{detail}")

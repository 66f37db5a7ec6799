"""Helpers for the media tests (a module of its own: conftest files are not importable)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

SIZE = (320, 180)
FPS = 25
SECONDS = 1.2
FRAMES = 30


def empty_video(path: Path) -> Path:
    """A Matroska file with a video track and not one frame (audio packets make the muxer write it)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path

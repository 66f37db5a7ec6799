"""Static-camera mode: a median background, the difference from it, and morphology."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmatte import FrameLimits
from vidmatte_local._settings import LocalSettings
from vidmatte_local._threaded import ThreadedMatter

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["StaticMatter", "median_background"]

SIDE = 320
"""Frames are matted at this size; the pipeline's guided filter restores full-resolution edges."""


def median_background(source: Path, samples: int, size: tuple[int, int]) -> NDArray[np.uint8]:
    """The per-pixel median of ``samples`` frames spread over the clip, at ``size`` (width, height).

    One decoding pass keeps every Nth frame (seeking would land on key frames
    only, often a single one in a short clip).  Memory: ``samples`` small frames.
    """
    import av
    import numpy as np

    from vidmatte.media import probe

    info = probe(source)
    every = max(1, info.frame_count // samples)
    kept: list[NDArray[np.uint8]] = []
    container: Any = av.open(str(source))
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index % every == 0 and len(kept) < samples:
                kept.append(frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
    background: NDArray[np.uint8] = np.median(np.stack(kept), axis=0).astype(np.uint8)
    return background


class StaticMatter(ThreadedMatter):
    """A :class:`vidmatte.FrameMatter` for a fixed camera: whatever differs from the background.

    The background is modelled once per clip (see :func:`median_background`),
    the first time frames arrive, on the worker thread.
    """

    def __init__(self, settings: LocalSettings, source: Path) -> None:
        limits = FrameLimits(batch_size=settings.batch_size, max_concurrency=1, max_side=SIDE)
        super().__init__(limits, workers=1, thread_name="vidmatte-static")
        self.settings = settings
        self.source = source
        self._background: NDArray[np.int16] | None = None

    def _segment(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        import cv2
        import numpy as np

        if self._background is None:
            height, width = frames[0].shape[:2]
            background = median_background(self.source, self.settings.static_samples, (width, height))
            self._background = background.astype(np.int16)
        low = self.settings.static_threshold * 255 * 0.5
        high = self.settings.static_threshold * 255 * 1.5
        open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        masks: list[NDArray[np.uint8]] = []
        for frame in frames:
            difference = np.abs(frame.astype(np.int16) - self._background).max(axis=2)
            soft = np.clip((difference - low) * (255 / (high - low)), 0, 255).astype(np.uint8)
            # Opening drops sensor-noise specks; closing fills holes where the subject
            # happens to match the background's colour.
            soft = cv2.morphologyEx(soft, cv2.MORPH_OPEN, open_kernel)
            soft = cv2.morphologyEx(soft, cv2.MORPH_CLOSE, close_kernel)
            masks.append(np.asarray(cv2.GaussianBlur(soft, (3, 3), 0), np.uint8))
        return masks

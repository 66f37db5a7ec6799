"""Helpers for the frame pipeline tests: fake matters and clips whose frames tell their index."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidmatte import BackendContext, Capabilities, Cost, FrameLimits, JobEvent, JobSnapshot, MattingBackend
from vidmatte.frames import frame_backend

FRAMES = 24
SIZE = (96, 64)


def level(index: int) -> int:
    """The grey level of frame ``index`` in :func:`index_clip` (distinct per frame)."""
    return 20 + 9 * index


def index_clip(path: Path, frames: int = FRAMES, *, still: bool = False) -> Path:
    """Uniform grey frames, a different level each (or all the same when ``still``)."""
    import av

    width, height = SIZE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25), options={"crf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(frames):
            picture = np.full((height, width, 3), 100 if still else level(i), np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


class FakeMatter:
    """Masks whose value is the frame's mean level; records every call; optional delays and failures."""

    name = "fake"

    def __init__(
        self,
        limits: FrameLimits | None = None,
        *,
        delay: float = 0.0,
        jitter: float = 0.0,
        fail_after: int | None = None,
        price: str = "0.01",
    ) -> None:
        self._limits = limits or FrameLimits(batch_size=4, max_concurrency=2)
        self.delay = delay
        self.jitter = jitter
        self.fail_after = fail_after
        self.price = price
        self.sent: list[int] = []
        """The mean level of every frame sent (identifies the frame)."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    @property
    def limits(self) -> FrameLimits:
        return self._limits

    async def matte(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.fail_after is not None and len(self.sent) >= self.fail_after:
                raise RuntimeError("the backend fell over")
            wait = self.delay + random.uniform(0, self.jitter)
            if wait:
                await asyncio.sleep(wait)
            masks = []
            for frame in frames:
                value = round(float(frame.mean()))
                self.sent.append(value)
                masks.append(np.full(frame.shape[:2], value, np.uint8))
            return masks
        finally:
            self.in_flight -= 1

    def cost_per_call(self) -> Cost:
        return Cost(self.price)

    async def aclose(self) -> None:
        self.closed = True


def make_backend(matter: FakeMatter, cache: Path, events: list[JobEvent] | None = None) -> MattingBackend:
    context = BackendContext(cache_dir=cache, events=(events.append if events is not None else lambda e: None))
    return frame_backend(matter, context, capabilities=Capabilities(local=True))


async def wait(backend: MattingBackend, handle: object, timeout: float = 30.0) -> JobSnapshot:
    """Poll until terminal (real time: the pipeline runs on real threads)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        snapshot = await backend.poll(handle)  # type: ignore[arg-type]
        if snapshot.state.is_terminal:
            return snapshot
        assert loop.time() < deadline, "job did not finish"
        await asyncio.sleep(0.01)

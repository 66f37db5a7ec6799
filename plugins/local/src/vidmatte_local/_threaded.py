"""What both local matters share: the work runs on worker threads, and it is free."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vidmatte import Cost, CostKind, FrameLimits

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ThreadedMatter"]


class ThreadedMatter:
    """A :class:`vidmatte.FrameMatter` whose subclasses implement ``_segment`` (run on worker threads)."""

    name = "local"

    def __init__(self, limits: FrameLimits, *, workers: int, thread_name: str) -> None:
        self._limits = limits
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=thread_name)

    @property
    def limits(self) -> FrameLimits:
        """Batching and concurrency the pipeline must respect."""
        return self._limits

    def _segment(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        raise NotImplementedError

    async def matte(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        """Masks (255 = foreground) for ``frames``, computed on the worker threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._segment, list(frames))

    def cost_per_call(self) -> Cost:
        """Zero: it runs here."""
        return Cost.zero(CostKind.FINAL, "local: free")

    async def aclose(self) -> None:
        """Stop the worker threads."""
        self._executor.shutdown(wait=True)

"""Time, injectable: the real clock follows the running event loop, so a virtual loop fakes it."""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "LoopClock"]


@runtime_checkable
class Clock(Protocol):
    """What the scheduler and backends need of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, intervals)."""

    def wall(self) -> float:
        """Epoch seconds (timestamps stored in handles and journals)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class LoopClock:
    """The event loop's clock.  Under :class:`vidmatte.testing.VirtualClock` time is virtual.

    Outside a running loop :meth:`monotonic` falls back to :func:`time.monotonic`.
    """

    def monotonic(self) -> float:
        """The running loop's time."""
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def wall(self) -> float:
        """Epoch seconds, moving with the loop's clock (so virtual time moves it too).

        The offset between the loop's clock and the epoch is fixed once per loop, so
        every ``LoopClock`` on one loop agrees even when that loop's time is virtual.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return time.time()
        offset = _EPOCH_OFFSETS.get(loop)
        if offset is None:
            offset = _EPOCH_OFFSETS[loop] = time.time() - loop.time()
        return offset + loop.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` (virtual under a virtual loop)."""
        await asyncio.sleep(max(0.0, seconds))


_EPOCH_OFFSETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = weakref.WeakKeyDictionary()

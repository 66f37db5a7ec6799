"""Test helpers for vidmatte and its plugins: virtual time.

:func:`run_virtual` runs a coroutine on an event loop whose clock jumps
straight to the next timer whenever nothing is ready, so a test of an hour of
polling takes milliseconds and never sleeps.  The scheduler, rate limiters and
retry backoff all read time from the running loop (:class:`vidmatte.LoopClock`),
so under this loop they are on the fake clock without being told.

Real sockets still work on this loop (it waits for them for real when no
timer is due), but tests that mix sockets and timers should use real time.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import selectors
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from vidmatte._clock import LoopClock
from vidmatte._models import (
    Artefact,
    CancelOutcome,
    Capabilities,
    Cost,
    CostKind,
    InputMode,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
)
from vidmatte.errors import RateLimitedError

__all__ = [
    "SimulatedJob",
    "SimulatedProvider",
    "SimulatedStats",
    "VirtualTimeLoop",
    "run_virtual",
]

T = TypeVar("T")


class _JumpingSelector(selectors.BaseSelector):
    """Answers at once, advancing the loop's virtual clock by the timeout it was given."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready:
            return ready
        if timeout is None:
            # No timer pending: only I/O can wake us, so wait for it for real.
            return self._inner.select(None)
        self._loop.advance(timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time, starting at 0.0."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        """Virtual seconds since the loop was made."""
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (the loop does this itself when idle)."""
        if seconds > 0:
            # Never lose a tiny step to float rounding: time must move or timers spin.
            self._virtual_now = max(self._virtual_now + seconds, math.nextafter(self._virtual_now, math.inf))


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop` and close it."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@attrs.define
class SimulatedJob:
    """One job of a :class:`SimulatedProvider`: when it was submitted and finishes."""

    job_id: str
    duration: float
    submitted: float
    done_at: float
    detected_at: float | None = None
    polls: int = 0
    last_poll: float | None = None


@attrs.define
class SimulatedStats:
    """What a :class:`SimulatedProvider` saw."""

    requests: int = 0
    rate_limited: int = 0
    not_modified: int = 0
    peak_window: int = 0
    """Most requests seen in any trailing window (must stay at or under the limit)."""


class SimulatedProvider:
    """A rate-limited job API on virtual time, shaped like AIgateway's documented behaviour.

    ``requests_per_minute`` is enforced over a sliding minute (429 with a
    whole-second ``Retry-After`` past it); polls of a job closer together than
    ``min_poll_interval`` get "304 Not Modified" (the previous snapshot).  Each
    job waits a queue time, then processes ``speed`` seconds per second of
    video, both drawn from the given ranges with a seeded generator.
    Use it under :func:`run_virtual`.
    """

    def __init__(
        self,
        *,
        requests_per_minute: float = 600,
        min_poll_interval: float = 3.0,
        queue: tuple[float, float] = (1.0, 10.0),
        speed: tuple[float, float] = (0.5, 1.5),
        seed: int = 0,
        name: str = "simulated",
    ) -> None:
        self.name = name
        self.limit = requests_per_minute
        self.min_poll_interval = min_poll_interval
        self._queue = queue
        self._speed = speed
        self._rng = random.Random(seed)
        self._window: collections.deque[float] = collections.deque()
        self.jobs: dict[str, SimulatedJob] = {}
        self.stats = SimulatedStats()
        self.capabilities = Capabilities(
            input_modes=frozenset({InputMode.URL}),
            requests_per_minute=requests_per_minute,
            min_poll_interval=min_poll_interval,
        )

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def create_job(self, duration: float) -> JobHandle:
        """A job submitted now (no request is counted) and its handle."""
        now = self._now()
        job_id = f"sim-{len(self.jobs)}"
        queue = self._rng.uniform(*self._queue)
        processing = self._rng.uniform(*self._speed) * duration
        self.jobs[job_id] = SimulatedJob(job_id, duration, now, now + queue + processing)
        wall = LoopClock().wall()
        return JobHandle(self.name, job_id, wall, duration)

    def _count_request(self) -> None:
        now = self._now()
        while self._window and self._window[0] <= now - 60.0:
            self._window.popleft()
        self.stats.requests += 1
        if len(self._window) >= self.limit:
            self.stats.rate_limited += 1
            retry_after = math.ceil(self._window[0] + 60.0 - now)
            raise RateLimitedError("rate limited", retry_after=float(retry_after), backend=self.name, status_code=429)
        self._window.append(now)
        self.stats.peak_window = max(self.stats.peak_window, len(self._window))

    def _snapshot(self, job: SimulatedJob, now: float) -> JobSnapshot:
        handle = JobHandle(self.name, job.job_id, 0.0, job.duration)
        if now >= job.done_at:
            return JobSnapshot(handle, JobState.SUCCEEDED, raw_status="completed", observed_at=now)
        return JobSnapshot(handle, JobState.RUNNING, raw_status="processing", observed_at=now)

    async def estimate(self, request: MattingRequest) -> Cost:
        """Free."""
        return Cost.zero(CostKind.ESTIMATED)

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        """Counted as one request; the duration comes from ``request.media``."""
        self._count_request()
        return self.create_job(request.media.duration if request.media else 10.0)

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        """One request: 429 past the limit, "304" (no change) when polled too soon."""
        self._count_request()
        job = self.jobs[handle.job_id]
        now = self._now()
        job.polls += 1
        if job.last_poll is not None and now - job.last_poll < self.min_poll_interval:
            self.stats.not_modified += 1
            # "304 Not Modified": the state as of the last real look, whatever happened since.
            return self._snapshot(job, job.last_poll)
        job.last_poll = now
        snapshot = self._snapshot(job, now)
        if snapshot.state is JobState.SUCCEEDED and job.detected_at is None:
            job.detected_at = now
        return snapshot

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """Cancels nothing: simulated jobs always run to the end."""
        self._count_request()
        return CancelOutcome.ALREADY_TERMINAL

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        """Simulated jobs have no artefacts."""
        raise NotImplementedError("simulated jobs produce no files")

    async def aclose(self) -> None:
        """Nothing to release."""

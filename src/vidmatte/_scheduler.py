"""One scheduler for every in-flight job: a timer queue per backend, not a loop per job.

Each backend gets one driver task with a heap of (due time, job).  The driver
pops the earliest due job, takes a token from the backend's rate limiter (the
poll then spends that token: see :func:`vidmatte._ratelimit.prepaid`), and
polls under the backend's concurrency limit.  When a poll comes back the job
is placed again: never before the declared minimum poll interval, a
``poll_after`` hint or a ``Retry-After``; otherwise where the backend's learned
speed model says completion is likely (:mod:`vidmatte._pollplan`).  A job whose
deadline passes is cancelled remotely and fails with :class:`JobTimeoutError`.

Before the model has learned anything its prior may be off by any factor (a
faster tier, a slower model), so a few jobs explore: they are polled on the
gateway SDK's geometric backoff, which finds completions at any time scale.
Once the model's prediction moves materially, every waiting job is planned
again (its old timer entry goes stale and is skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

import attrs

from vidmatte._clock import Clock, LoopClock
from vidmatte._lifecycle import next_state
from vidmatte._models import JobHandle, JobSnapshot, JobState
from vidmatte._pollplan import PollPolicy, SpeedModel
from vidmatte._ratelimit import RateLimiter, prepaid
from vidmatte.contract import MattingBackend
from vidmatte.errors import JobTimeoutError, ProtocolError, VidmatteError

__all__ = ["Scheduler", "SchedulerStats"]

_log = logging.getLogger("vidmatte")

_MAX_POLL_ERRORS = 8
"""Consecutive failed polls of one job before the error is raised to its waiter."""
_REPLAN_FACTOR = 2.5
"""Change (either way) of the model's typical prediction that re-plans every waiting job.
Smaller drifts are left alone: the first completions of a batch are its fastest jobs,
and chasing their optimism would pull every look early."""


@attrs.define
class SchedulerStats:
    """Counters for one backend (benchmarks and tests read them)."""

    polls: int = 0
    poll_errors: int = 0
    rate_limited: int = 0
    completed: int = 0
    timed_out: int = 0


class _Job:
    __slots__ = (
        "deadline",
        "due",
        "errors",
        "explore",
        "future",
        "handle",
        "in_flight",
        "last_poll",
        "on_snapshot",
        "plan",
        "prev_poll",
        "snapshot",
        "state",
        "submitted_mono",
        "token",
    )

    def __init__(
        self,
        handle: JobHandle,
        future: asyncio.Future[JobSnapshot],
        deadline: float | None,
        submitted_mono: float,
        on_snapshot: Callable[[JobSnapshot], None] | None,
    ) -> None:
        self.handle = handle
        self.future = future
        self.deadline = deadline
        self.submitted_mono = submitted_mono
        self.on_snapshot = on_snapshot
        self.state = JobState.PENDING
        self.snapshot: JobSnapshot | None = None
        self.last_poll: float | None = None
        self.prev_poll: float | None = None
        self.plan: list[float] = []
        self.errors = 0
        self.explore = False
        """Polled on the geometric backoff to teach a model that knows nothing yet."""
        self.in_flight = False
        self.token = -1
        self.due = 0.0
        """The sequence number of the job's live timer entry (older entries are stale)."""


class _Lane:
    """The timer queue, limiter, speed model and counters of one backend."""

    def __init__(self, backend: MattingBackend, limiter: RateLimiter, policy: PollPolicy) -> None:
        caps = backend.capabilities
        self.backend = backend
        self.limiter = limiter
        self.min_interval = caps.min_poll_interval
        self.concurrency = asyncio.Semaphore(caps.max_concurrency or 64)
        self.model = SpeedModel(policy)
        self.heap: list[tuple[float, int, _Job]] = []
        self.wakeup = asyncio.Event()
        self.driver: asyncio.Task[None] | None = None
        self.jobs: dict[_Job, None] = {}
        """Jobs waiting on this lane, in arrival order (the budget is shared among them; a dict
        so that re-planning walks them in a reproducible order)."""
        self.stats = SchedulerStats()
        self.explorers = 0
        self.planned_with: float | None = None
        """The model's typical prediction when the waiting jobs were planned."""


class Scheduler:
    """Drives every job's polling from one timer queue per backend.

    ``clock`` defaults to the event loop's clock (virtual under
    :func:`vidmatte.testing.run_virtual`).  Limiters are shared per backend
    name, so submits, cancels and polls of one backend spend one budget.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        policy: PollPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock or LoopClock()
        self._policy = policy or PollPolicy()
        self._rng = rng or random.Random()
        self._lanes: dict[str, _Lane] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[object]] = set()

    def limiter_for(self, name: str, requests_per_minute: float | None) -> RateLimiter:
        """The shared request budget of backend ``name`` (created on first use)."""
        limiter = self._limiters.get(name)
        if limiter is None:
            limiter = self._limiters[name] = RateLimiter(requests_per_minute, clock=self._clock)
        return limiter

    def stats(self, name: str) -> SchedulerStats:
        """Counters of backend ``name``."""
        lane = self._lanes.get(name)
        return lane.stats if lane is not None else SchedulerStats()

    def _lane(self, backend: MattingBackend) -> _Lane:
        lane = self._lanes.get(backend.name)
        if lane is None:
            limiter = self.limiter_for(backend.name, backend.capabilities.requests_per_minute)
            lane = self._lanes[backend.name] = _Lane(backend, limiter, self._policy)
        return lane

    async def wait(
        self,
        backend: MattingBackend,
        handle: JobHandle,
        *,
        timeout: float | None = None,
        on_snapshot: Callable[[JobSnapshot], None] | None = None,
    ) -> JobSnapshot:
        """Poll ``handle`` until it is terminal and return its last snapshot.

        ``on_snapshot`` sees every snapshot that changed something.  When
        ``timeout`` seconds pass first, the remote job is cancelled (best effort)
        and :class:`JobTimeoutError` is raised.
        """
        lane = self._lane(backend)
        now = self._clock.monotonic()
        elapsed = max(0.0, self._clock.wall() - handle.submitted_at)
        future: asyncio.Future[JobSnapshot] = asyncio.get_running_loop().create_future()
        job = _Job(handle, future, None if timeout is None else now + timeout, now - elapsed, on_snapshot)
        self._plan_job(lane, job)
        self._push(lane, job, self._next_due(lane, job, now, hint=None))
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()

    # -- placement ---------------------------------------------------------------------

    def _points(self, lane: _Lane) -> int:
        """How many planned polls a job can afford, given the budget and the jobs sharing it."""
        rate = lane.limiter.rate
        most = self._policy.max_points if self._policy.target_gap is not None else len(self._policy.quantiles)
        if rate is None:
            return most
        typical = max(1.0, lane.model.predict(60.0))
        affordable = rate * typical / max(1, len(lane.jobs))
        return max(1, min(most, int(affordable)))

    def _plan_job(self, lane: _Lane, job: _Job) -> None:
        lane.jobs[job] = None
        duration = job.handle.media_duration
        job.plan = []
        if duration is None or duration <= 0:
            return
        if lane.model.learned < self._policy.min_samples and lane.explorers < self._policy.min_samples:
            lane.explorers += 1
            job.explore = True
            return
        job.explore = False
        if lane.planned_with is None:
            lane.planned_with = lane.model.predict(60.0)
        offsets = lane.model.plan(duration, self._points(lane))
        job.plan = [job.submitted_mono + offset for offset in offsets]

    def _maybe_replan(self, lane: _Lane) -> None:
        """Plan every waiting job again when the model's prediction moved materially."""
        if lane.model.learned == 0:
            return
        typical = lane.model.predict(60.0)
        planned = lane.planned_with
        if planned is not None and planned / _REPLAN_FACTOR <= typical <= planned * _REPLAN_FACTOR:
            return
        now = self._clock.monotonic()
        lane.planned_with = typical
        for job in list(lane.jobs):
            if job.in_flight or job.future.done():
                continue
            self._plan_job(lane, job)
            # Only ever bring a look forward: a job past its new window keeps the look it has
            # (re-planning "from now" would push overdue jobs back again and again).
            due = self._next_due(lane, job, now, hint=None)
            if due < job.due:
                self._push(lane, job, due)

    def _next_due(self, lane: _Lane, job: _Job, now: float, hint: float | None) -> float:
        earliest = now
        if job.last_poll is not None:
            # A hair over the minimum: float rounding (or the provider's clock) must not turn
            # a poll exactly at the minimum into a "304 Not Modified".
            earliest = max(earliest, job.last_poll + lane.min_interval * 1.01 + 1e-6)
        if hint is not None:
            earliest = max(earliest, now + hint)
        while job.plan and job.plan[0] < earliest:
            job.plan.pop(0)
        if job.plan:
            due = job.plan.pop(0)
        elif job.handle.media_duration and job.handle.media_duration > 0 and not job.explore:
            # Past every planned point: gaps grow with the time already spent.
            elapsed = max(lane.min_interval, now - job.submitted_mono)
            gap = min(self._policy.max_gap, elapsed * (self._policy.growth - 1.0))
            if lane.limiter.rate is not None:
                # Overdue jobs may share half the request budget: at low load they are
                # looked at often, at high load the geometric gap takes over.
                gap = min(gap, max(lane.min_interval, 6.0 * len(lane.jobs) / lane.limiter.rate))
            due = now + gap
        else:
            # Unknown duration, or exploring: the gateway SDK's own backoff (2 s x1.5 to 30 s).
            # The gap grows from the previous gap (not from the poll's round trip).
            previous = 0.0 if job.last_poll is None or job.prev_poll is None else job.last_poll - job.prev_poll
            # Explorers start at the declared minimum interval instead: the only hint of
            # the backend's time scale before anything finished.
            first = lane.min_interval if job.explore and lane.min_interval > 0 else self._policy.unknown_first
            due = now + min(30.0, max(first, previous * 1.5))
        if job.snapshot is not None and job.snapshot.progress and 0.0 < job.snapshot.progress < 1.0:
            # The provider reports progress: extrapolate the finish linearly.
            elapsed = now - job.submitted_mono
            finish = job.submitted_mono + elapsed / job.snapshot.progress
            due = min(due, max(finish, now))
        if job.deadline is not None:
            due = min(due, job.deadline)
        return max(due, earliest)

    def _push(self, lane: _Lane, job: _Job, due: float) -> None:
        job.token = next(self._seq)
        job.due = due
        heapq.heappush(lane.heap, (due, job.token, job))
        if lane.driver is None or lane.driver.done():
            lane.driver = asyncio.get_running_loop().create_task(self._drive(lane))
        lane.wakeup.set()

    # -- the driver --------------------------------------------------------------------

    async def _drive(self, lane: _Lane) -> None:
        while lane.heap:
            due, token, job = lane.heap[0]
            if job.future.done() or token != job.token:
                heapq.heappop(lane.heap)
                if job.future.done():
                    lane.jobs.pop(job, None)
                continue
            now = self._clock.monotonic()
            if due > now + 1e-6:
                lane.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wakeup.wait(), timeout=due - now)
                continue
            if job.deadline is not None and now >= job.deadline:
                heapq.heappop(lane.heap)
                lane.jobs.pop(job, None)
                self._expire(lane, job)
                continue
            wait = lane.limiter.try_acquire()
            if wait > 0:
                await self._clock.sleep(wait)
                continue
            heapq.heappop(lane.heap)
            job.in_flight = True
            await lane.concurrency.acquire()
            job.prev_poll, job.last_poll = job.last_poll, now
            self._spawn(self._poll(lane, job))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, lane: _Lane, job: _Job) -> None:
        hint: float | None = None
        try:
            lane.stats.polls += 1
            with prepaid(lane.limiter):
                snapshot = await lane.backend.poll(job.handle)
        except VidmatteError as exc:
            lane.stats.poll_errors += 1
            job.errors += 1
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                lane.stats.rate_limited += 1
                lane.limiter.pause(retry_after)
            if not (exc.retryable or isinstance(exc, ProtocolError)) or job.errors >= _MAX_POLL_ERRORS:
                self._finish(lane, job, error=exc)
                return
            backoff = min(30.0, 0.5 * 2 ** min(job.errors, 6)) * self._rng.uniform(0.5, 1.0)
            hint = max(retry_after or 0.0, backoff)
        except Exception as exc:  # noqa: BLE001 - a plugin bug ends its job, never the driver
            self._finish(lane, job, error=exc)
            return
        else:
            job.errors = 0
            hint = self._observe(lane, job, snapshot)
            if job.future.done():
                lane.jobs.pop(job, None)
                return
        finally:
            job.in_flight = False
            lane.concurrency.release()
        now = self._clock.monotonic()
        self._push(lane, job, self._next_due(lane, job, now, hint))

    def _observe(self, lane: _Lane, job: _Job, snapshot: JobSnapshot) -> float | None:
        """Record a snapshot; resolve the job if terminal; return the poll-after hint."""
        previous_poll_state = job.state
        state = next_state(job.state, snapshot.state, job_id=job.handle.job_id)
        if state is not snapshot.state:
            snapshot = attrs.evolve(snapshot, state=state)
        changed = job.snapshot is None or snapshot != job.snapshot
        job.state = state
        job.snapshot = snapshot
        if state is JobState.UNKNOWN and previous_poll_state is not JobState.UNKNOWN:
            _log.warning(
                "job %s on %s: unrecognised provider status %r; polling on until the deadline",
                job.handle.job_id,
                lane.backend.name,
                snapshot.raw_status,
            )
        if changed and job.on_snapshot is not None:
            try:
                job.on_snapshot(snapshot)
            except Exception:  # noqa: BLE001 - an observer's bug must not lose the job
                _log.exception("on_snapshot callback failed for job %s", job.handle.job_id)
        if state.is_terminal:
            if state is JobState.SUCCEEDED and job.handle.media_duration:
                # Completion happened between the previous look and this one.
                seen = job.last_poll if job.last_poll is not None else self._clock.monotonic()
                lower = job.prev_poll if job.prev_poll is not None else job.submitted_mono
                # Only the window is known; the model imputes inside it (see _pollplan).
                lane.model.record_window(
                    job.handle.media_duration, lower - job.submitted_mono, seen - job.submitted_mono
                )
                self._finish(lane, job, snapshot=snapshot)
                self._maybe_replan(lane)
                return None
            self._finish(lane, job, snapshot=snapshot)
            return None
        return snapshot.poll_after

    def _finish(
        self, lane: _Lane, job: _Job, *, snapshot: JobSnapshot | None = None, error: BaseException | None = None
    ) -> None:
        lane.jobs.pop(job, None)
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            assert snapshot is not None
            lane.stats.completed += 1
            job.future.set_result(snapshot)

    def _expire(self, lane: _Lane, job: _Job) -> None:
        lane.stats.timed_out += 1
        self._spawn(self._cancel_quietly(lane.backend, job.handle))
        if not job.future.done():
            job.future.set_exception(
                JobTimeoutError(
                    "the job's deadline passed; the remote job was asked to cancel",
                    backend=lane.backend.name,
                    job_id=job.handle.job_id,
                )
            )

    async def _cancel_quietly(self, backend: MattingBackend, handle: JobHandle) -> None:
        try:
            await backend.cancel(handle)
        except Exception as exc:  # noqa: BLE001 - best effort: the timeout is what we report
            _log.warning("cancelling job %s on %s after its deadline failed: %s", handle.job_id, backend.name, exc)

    async def aclose(self) -> None:
        """Stop the drivers and wait for polls in flight."""
        for lane in self._lanes.values():
            if lane.driver is not None:
                lane.driver.cancel()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for lane in self._lanes.values():
            if lane.driver is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.driver

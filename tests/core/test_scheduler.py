"""The scheduler on virtual time: limits held, hints honoured, deadlines enforced."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics

import pytest

from tests.core.conftest import ScriptedBackend
from vidmatte import BackendContext, JobHandle, JobSnapshot, JobState, Scheduler
from vidmatte.errors import AuthenticationError, JobTimeoutError, RateLimitedError
from vidmatte.testing import SimulatedProvider, run_virtual


def test_a_thousand_jobs_under_600_a_minute_with_a_3_s_minimum() -> None:
    """The acceptance scenario: no limit exceeded, every completion detected, figures reported."""

    async def main() -> tuple[SimulatedProvider, list[JobSnapshot]]:
        provider = SimulatedProvider(requests_per_minute=600, min_poll_interval=3.0, seed=7)
        scheduler = Scheduler(rng=random.Random(1))
        rng = random.Random(2)
        handles = [provider.create_job(rng.uniform(5, 120)) for _ in range(1000)]
        results = await asyncio.gather(*(scheduler.wait(provider, h, timeout=7200) for h in handles))
        await scheduler.aclose()
        return provider, list(results)

    provider, results = run_virtual(main())
    assert all(r.state is JobState.SUCCEEDED for r in results)
    assert provider.stats.rate_limited == 0
    assert provider.stats.peak_window <= 600
    assert provider.stats.not_modified == 0, "a poll came sooner than the 3 s minimum"
    jobs = list(provider.jobs.values())
    assert all(j.detected_at is not None and j.detected_at >= j.done_at for j in jobs)
    delays = sorted(j.detected_at - j.done_at for j in jobs if j.detected_at is not None)
    polls = statistics.mean(j.polls for j in jobs)
    print(
        f"\n1000 jobs: {polls:.2f} polls/job, detection delay p50 {delays[500]:.1f} s, "
        f"p95 {delays[950]:.1f} s, 429s {provider.stats.rate_limited}"
    )


def _context() -> BackendContext:
    return BackendContext()


def test_polls_never_come_faster_than_the_declared_minimum() -> None:
    async def main() -> list[float]:
        backend = ScriptedBackend(_context(), [JobState.RUNNING] * 10 + [JobState.SUCCEEDED], min_poll_interval=5.0)
        handle = JobHandle("scripted", "j1", backend.context.clock.wall(), None)
        await Scheduler().wait(backend, handle, timeout=3600)
        return backend.polls

    polls = run_virtual(main())
    assert len(polls) == 11
    assert min(b - a for a, b in itertools.pairwise(polls)) >= 5.0 - 1e-9


def test_poll_after_hints_are_honoured() -> None:
    class Hinting(ScriptedBackend):
        async def poll(self, handle: JobHandle) -> JobSnapshot:
            snapshot = await super().poll(handle)
            return JobSnapshot(handle, snapshot.state, poll_after=40.0, artefacts=snapshot.artefacts)

    async def main() -> list[float]:
        backend = Hinting(_context(), [JobState.RUNNING, JobState.RUNNING, JobState.SUCCEEDED])
        handle = JobHandle("scripted", "j1", backend.context.clock.wall(), None)
        await Scheduler().wait(backend, handle)
        return backend.polls

    polls = run_virtual(main())
    assert [round(b - a) >= 40 for a, b in itertools.pairwise(polls)] == [True, True]


def test_retry_after_is_honoured_and_polling_goes_on() -> None:
    class Limited(ScriptedBackend):
        calls = 0

        async def poll(self, handle: JobHandle) -> JobSnapshot:
            self.calls += 1
            if self.calls == 1:
                self.polls.append(self.context.clock.monotonic())
                raise RateLimitedError("slow down", retry_after=107.0, backend="scripted")
            return await super().poll(handle)

    async def main() -> tuple[list[float], JobSnapshot]:
        backend = Limited(_context(), [JobState.SUCCEEDED])
        handle = JobHandle("scripted", "j1", backend.context.clock.wall(), None)
        snapshot = await Scheduler().wait(backend, handle)
        return backend.polls, snapshot

    polls, snapshot = run_virtual(main())
    assert snapshot.state is JobState.SUCCEEDED
    assert polls[1] - polls[0] >= 107.0


def test_non_retryable_errors_reach_the_waiter_at_once() -> None:
    class Denied(ScriptedBackend):
        async def poll(self, handle: JobHandle) -> JobSnapshot:
            self.polls.append(0.0)
            raise AuthenticationError("bad key", backend="scripted")

    async def main() -> int:
        backend = Denied(_context())
        with pytest.raises(AuthenticationError):
            await Scheduler().wait(backend, JobHandle("scripted", "j1", backend.context.clock.wall()))
        return len(backend.polls)

    assert run_virtual(main()) == 1


def test_an_unknown_status_keeps_polling_until_the_deadline_then_cancels(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> ScriptedBackend:
        backend = ScriptedBackend(_context(), [JobState.UNKNOWN])
        handle = JobHandle("scripted", "j1", backend.context.clock.wall(), 30.0)
        with pytest.raises(JobTimeoutError):
            await Scheduler().wait(backend, handle, timeout=600)
        await asyncio.sleep(0)
        return backend

    backend = run_virtual(main())
    assert len(backend.polls) > 3
    assert backend.polls[-1] <= 600
    assert backend.cancelled == ["j1"]
    assert "unrecognised provider status" in caplog.text


def test_terminal_states_are_final_even_if_the_provider_changes_its_mind() -> None:
    async def main() -> JobSnapshot:
        backend = ScriptedBackend(_context(), [JobState.FAILED, JobState.SUCCEEDED])
        return await Scheduler().wait(backend, JobHandle("scripted", "j1", backend.context.clock.wall()))

    assert run_virtual(main()).state is JobState.FAILED


def test_many_jobs_share_one_driver_task_per_backend() -> None:
    async def main() -> int:
        provider = SimulatedProvider(requests_per_minute=6000, min_poll_interval=1.0, seed=3)
        scheduler = Scheduler()
        handles = [provider.create_job(10.0) for _ in range(200)]
        waiters = [asyncio.ensure_future(scheduler.wait(provider, h)) for h in handles]
        await asyncio.sleep(0.01)
        tasks = len(asyncio.all_tasks())
        await asyncio.gather(*waiters)
        return tasks

    # 200 waiters + the driver + the main task (+ polls in flight at that instant).
    assert run_virtual(main()) <= 200 + 2 + 64

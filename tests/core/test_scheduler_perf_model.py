"""Poll placement and learning (benchmark issue): behaviour on virtual time, no wall-clock timing."""

from __future__ import annotations

import asyncio
import itertools
import random

from vidmatte import JobHandle, JobState, PollPolicy, Scheduler
from vidmatte._pollplan import SpeedModel
from vidmatte.testing import SimulatedProvider, run_virtual


def test_the_model_learns_from_censored_windows_without_collapsing() -> None:
    """Wide windows (first look already saw it done) must not drag the fit to the polling pattern."""
    rng = random.Random(5)
    model = SpeedModel(PollPolicy())
    for _ in range(256):
        duration = rng.uniform(5, 120)
        actual = rng.uniform(1, 10) + rng.uniform(0.5, 1.5) * duration
        if rng.random() < 0.5:
            model.record_window(duration, 0.0, actual + rng.uniform(0, 60))  # seen late, first look
        else:
            model.record_window(duration, actual - rng.uniform(0, 5), actual + rng.uniform(0, 5))
    # True expectation: 5.5 + 1.0 * d.
    assert 50 < model.predict(60.0) < 80
    assert 100 < model.predict(120.0) < 150


def test_polls_go_on_a_grid_across_the_likely_window_ending_at_its_late_end() -> None:
    model = SpeedModel(PollPolicy(target_gap=10.0, prior_queue=0.0, prior_speed=1.0))
    start, end = model.window(100.0)
    offsets = model.plan(100.0, points=12)
    assert offsets == sorted(offsets)
    assert abs(offsets[-1] - end) < 1e-9
    assert all(abs((b - a) - 10.0) < 1e-9 for a, b in itertools.pairwise(offsets))
    assert offsets[0] > start
    assert offsets[0] - start <= 10.0 + 1e-9
    # A tight budget widens the gaps instead of dropping the late end.
    few = model.plan(100.0, points=2)
    assert len(few) == 2
    assert abs(few[-1] - end) < 1e-9


def test_the_quantile_placement_is_still_available() -> None:
    model = SpeedModel(PollPolicy(target_gap=None))
    assert len(model.plan(60.0, points=5)) == 5


def test_a_prior_ten_times_too_slow_is_unlearned_within_the_batch() -> None:
    """Jobs 10x faster than the prior assumes: exploring jobs teach the model, the rest are re-planned."""

    async def main() -> tuple[SimulatedProvider, float]:
        provider = SimulatedProvider(
            requests_per_minute=6000, min_poll_interval=0.3, queue=(0.1, 1.0), speed=(0.05, 0.15), seed=7
        )
        scheduler = Scheduler(rng=random.Random(1))
        rng = random.Random(7)
        handles = [provider.create_job(rng.uniform(5, 120)) for _ in range(200)]
        results = await asyncio.gather(*(scheduler.wait(provider, h) for h in handles))
        assert all(r.state is JobState.SUCCEEDED for r in results)
        await scheduler.aclose()
        delays = sorted(j.detected_at - j.done_at for j in provider.jobs.values() if j.detected_at is not None)
        return provider, delays[int(0.95 * (len(delays) - 1))]

    provider, p95 = run_virtual(main())
    assert provider.stats.rate_limited == 0
    assert provider.stats.not_modified == 0
    # Jobs take 0.35-19 s; the prior alone would first look at ~100 s.
    assert p95 < 25.0
    assert provider.stats.requests / len(provider.jobs) < 3.0


def test_unknown_durations_back_off_geometrically() -> None:
    async def main() -> list[float]:
        provider = SimulatedProvider(requests_per_minute=600, min_poll_interval=1.0, queue=(200, 200), seed=1)
        made = provider.create_job(10.0)
        handle = JobHandle(made.backend, made.job_id, made.submitted_at, None)
        times: list[float] = []
        poll = provider.poll

        async def recording(h: JobHandle) -> object:
            times.append(asyncio.get_running_loop().time())
            return await poll(h)

        provider.poll = recording  # type: ignore[method-assign]
        await Scheduler().wait(provider, handle)
        return times

    times = run_virtual(main())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 2.0
    assert all(b >= a * 1.49 or b >= 29.9 for a, b in itertools.pairwise(gaps[:-1]))
    assert max(gaps) <= 30.0 + 1e-6


def test_a_thousand_jobs_at_600_a_minute_learned_then_cheaper_than_the_sdk() -> None:
    """A second batch after learning: zero 429s and well under the SDK backoff's polls."""

    async def main() -> tuple[float, int]:
        provider = SimulatedProvider(requests_per_minute=600, min_poll_interval=3.0, seed=7)
        scheduler = Scheduler(rng=random.Random(1))
        rng = random.Random(2)
        for _ in range(2):
            before = provider.stats.requests
            handles = [provider.create_job(rng.uniform(5, 120)) for _ in range(1000)]
            await asyncio.gather(*(scheduler.wait(provider, h) for h in handles))
        await scheduler.aclose()
        return (provider.stats.requests - before) / 1000, provider.stats.rate_limited

    per_job, rate_limited = run_virtual(main())
    assert rate_limited == 0
    assert per_job < 2.0


def test_waiters_on_one_budget_sleep_once_each_and_go_in_order_at_the_rate() -> None:
    """A thousand callers of acquire(): each wakes once, in turn, never faster than the rate."""
    from vidmatte import RateLimiter

    async def main() -> tuple[list[float], int]:
        limiter = RateLimiter(600.0)  # 9.5 a second after the safety margin
        sleeps = 0
        sleep = limiter._clock.sleep

        async def counting(seconds: float) -> None:
            nonlocal sleeps
            sleeps += 1
            await sleep(seconds)

        limiter._clock.sleep = counting  # type: ignore[method-assign]
        times: list[float] = []

        async def caller() -> None:
            await limiter.acquire()
            times.append(asyncio.get_running_loop().time())

        await asyncio.gather(*(caller() for _ in range(1000)))
        return times, sleeps

    times, sleeps = run_virtual(main())
    assert sleeps <= 1000
    assert times == sorted(times)
    rate = 600.0 * 0.95 / 60.0
    # Any window holds at most burst + rate * window requests.
    for i in range(0, 1000, 37):
        for j in range(i + 1, 1000, 53):
            assert j - i + 1 <= 5 + rate * (times[j] - times[i]) + 1e-6
    assert times[-1] >= (1000 - 5) / rate - 1e-6


def test_a_pause_spaces_the_waiters_after_it_instead_of_releasing_them_at_once() -> None:
    from vidmatte import RateLimiter

    async def main() -> list[float]:
        limiter = RateLimiter(600.0)
        limiter.pause(10.0)
        times: list[float] = []

        async def caller() -> None:
            await limiter.acquire()
            times.append(asyncio.get_running_loop().time())

        await asyncio.gather(*(caller() for _ in range(20)))
        return times

    times = run_virtual(main())
    assert min(times) >= 10.0 - 1e-9
    rate = 600.0 * 0.95 / 60.0
    assert times[-1] - times[0] >= 19 / rate - 1e-6

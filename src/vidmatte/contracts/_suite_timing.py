"""Group ``timing``: the pace of polling, driven through :class:`vidmatte.Scheduler` on virtual time."""

from __future__ import annotations

# ruff: noqa: PT018 - compound asserts with one message read better in a conformance suite
import asyncio
import itertools
from typing import Any

import pytest

import vidmatte
from vidmatte._models import JobSnapshot, JobState
from vidmatte.contracts._harness import IDEMPOTENCY_KEY, Harness
from vidmatte.contracts._replay import Call, Replay
from vidmatte.contracts._subject import Group
from vidmatte.contracts._suite_http import retry_after_of

__all__ = ["TimingContract"]

_SLACK = 1e-6


def scheduler_class() -> Any:
    """``vidmatte.Scheduler``, or a skip naming what is missing."""
    found = getattr(vidmatte, "Scheduler", None)
    if found is None:
        pytest.skip("vidmatte.Scheduler is not available in this vidmatte version")
    return found


async def wait_with_scheduler(h: Harness, replay: Replay) -> tuple[JobSnapshot, list[tuple[int, JobSnapshot]]]:
    """Submit and wait with a fresh Scheduler; return the final snapshot and (call index, snapshot) pairs."""
    seen: list[tuple[int, JobSnapshot]] = []

    def record(snapshot: JobSnapshot) -> None:
        seen.append((len(replay.calls), snapshot))

    async with h.backend(replay) as backend:
        handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
        final = await scheduler_class()().wait(backend, handle, timeout=h.subject.job_timeout, on_snapshot=record)
    return final, seen


def polls(replay: Replay) -> list[Call]:
    """The poll requests made."""
    return replay.of_role("poll")


class TimingContract:
    """Never faster than the declared minimum; poll-after and Retry-After honoured."""

    def test_scheduler_respects_min_poll_interval(self, vidmatte_harness: Harness) -> None:
        """Consecutive polls of one job are at least ``min_poll_interval`` apart."""
        h = vidmatte_harness
        h.require(Group.TIMING)
        replay = h.http_replay("job_succeeds")
        final, _ = h.run(wait_with_scheduler(h, replay))
        h.no_unexpected(replay)
        assert final.state is JobState.SUCCEEDED, f"job ended {final.state.value!r}"
        minimum = h.subject.spec.capabilities.min_poll_interval
        calls = polls(replay)
        assert len(calls) >= 2, f"scenario 'job_succeeds' needs at least two polls\n{replay.transcript()}"
        gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
        assert min(gaps) >= minimum - _SLACK, f"polls {min(gaps):.3f} s apart; declared minimum {minimum} s"

    def test_scheduler_honours_poll_after(self, vidmatte_harness: Harness) -> None:
        """A provider's poll-after hint reaches the snapshot and delays the next poll."""
        h = vidmatte_harness
        h.require(Group.TIMING)
        replay = h.http_replay("poll_after")
        final, seen = h.run(wait_with_scheduler(h, replay))
        h.no_unexpected(replay)
        assert final.state is JobState.SUCCEEDED
        hinted = [(index, s) for index, s in seen if s.poll_after]
        assert hinted, "the provider sent poll-after hints but no snapshot carries poll_after"
        for index, snapshot in hinted:
            asked_at = replay.calls[index - 1].at
            later = [c for c in replay.calls[index:] if c.role == "poll"]
            if later:
                gap = later[0].at - asked_at
                assert gap >= (snapshot.poll_after or 0) - _SLACK, (
                    f"polled {gap:.2f} s after a hint of {snapshot.poll_after} s"
                )

    def test_scheduler_honours_retry_after(self, vidmatte_harness: Harness) -> None:
        """After a poll answered 429, the next poll waits the Retry-After it asked for."""
        h = vidmatte_harness
        h.require(Group.TIMING)
        replay = h.http_replay("poll_rate_limited")
        wanted = retry_after_of(replay, "poll")
        minimum = h.subject.spec.capabilities.min_poll_interval
        if wanted <= minimum:
            pytest.skip(
                f"scenario 'poll_rate_limited' asks for Retry-After {wanted:g} s, not more than the "
                f"{minimum:g} s minimum poll interval: record a longer one to test it"
            )

        async def go() -> JobSnapshot:
            loop = asyncio.get_running_loop()
            start = loop.time()
            final, _ = await wait_with_scheduler(h, replay)
            assert loop.time() - start < h.subject.job_timeout
            return final

        final = h.run(go())
        h.no_unexpected(replay)
        assert final.state is JobState.SUCCEEDED
        calls = polls(replay)
        limited = [i for i, c in enumerate(calls) if c.exchange is not None and c.exchange.status == 429]
        assert limited and limited[0] + 1 < len(calls), replay.transcript()
        gap = calls[limited[0] + 1].at - calls[limited[0]].at
        assert gap >= wanted - _SLACK, f"polled again {gap:.2f} s after a 429 asking for {wanted} s"

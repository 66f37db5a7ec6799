"""Resume from every crash point: the journal alone finishes the job, and nothing is paid twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from journal_fakes import PRICE, FakeProvider, fake_plugins
from journal_helpers import make_clip
from numpy.typing import NDArray

import vidmatte
from vidmatte import AsyncClient, BackendContext, Capabilities, Cost, CostKind, EventKind, FrameLimits, JobEvent
from vidmatte._journal import Journal, Step
from vidmatte._journal_plugin import describe_request
from vidmatte.errors import JobFailedError, MediaError, RequestRejectedError, TransientError
from vidmatte.frames import frame_backend
from vidmatte.testing import run_virtual

URL = "https://example.test/clip.mp4"


def _client(provider: FakeProvider, journal: Path, **kwargs: object) -> AsyncClient:
    return AsyncClient(
        plugins=fake_plugins(provider),
        environ={},
        settings=vidmatte.Settings(backend="fake"),
        journal=journal,
        **kwargs,  # type: ignore[arg-type]
    )


async def _crash_at(provider: FakeProvider, journal: Path, dest: Path, kind: EventKind, state: str = "") -> str:
    """Run a job and stop it dead right after event ``kind`` (the process 'dies' there)."""
    seen = asyncio.Event()
    keys: list[str] = []

    def events(event: JobEvent) -> None:
        keys.append(event.job_key)
        if event.kind is kind and (not state or (event.snapshot is not None and event.snapshot.state.value == state)):
            seen.set()

    client = _client(provider, journal, events=events)
    task = asyncio.create_task(client.remove(URL, dest))
    await seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    return keys[0]


def _resume(provider: FakeProvider, journal: Path) -> list[vidmatte.ResumeOutcome]:
    async def main() -> list[vidmatte.ResumeOutcome]:
        async with _client(provider, journal) as client:
            return await client.resume()

    return run_virtual(main())


@pytest.mark.parametrize(
    ("kind", "state", "step"),
    [
        (EventKind.SUBMITTING, "", Step.SUBMITTING),
        (EventKind.SUBMITTED, "", Step.SUBMITTED),
        (EventKind.STATE_CHANGED, "running", Step.SUBMITTED),
        (EventKind.FINISHED, "", Step.FINISHED),
    ],
)
def test_a_job_killed_at_each_step_is_finished_by_resume_and_paid_once(
    tmp_path: Path, kind: EventKind, state: str, step: str
) -> None:
    # Killed at SUBMITTING: the request reached the provider, which made the job; the answer never came.
    provider = FakeProvider(hang_after_submit=kind is EventKind.SUBMITTING)
    journal = tmp_path / "journal.sqlite"
    dest = tmp_path / "out.webm"
    key = run_virtual(_crash_at(provider, journal, dest, kind, state))
    with Journal.open(journal) as j:
        (record,) = j.unfinished()
        assert record.step == step
        assert record.job_key == key
        assert record.dest == str(dest.absolute())
    assert not dest.exists()

    (outcome,) = _resume(provider, journal)
    assert outcome.ok, outcome.error
    assert dest.read_bytes() == b"result of job-1"
    assert provider.submissions == 1
    assert provider.charges == 1
    with Journal.open(journal) as j:
        (record,) = j.jobs()
        assert record.step == Step.DONE
        assert record.succeeded
        assert record.spent == PRICE
        assert record.output_sha256 is not None
        assert not j.unfinished()
    assert _resume(provider, journal) == []  # nothing left: a second resume does nothing


def test_a_submit_whose_answer_was_lost_is_reconciled_by_its_key_not_resubmitted(tmp_path: Path) -> None:
    provider = FakeProvider(lose_next_answers=1)
    journal = tmp_path / "journal.sqlite"

    async def main() -> None:
        async with _client(provider, journal) as client:
            await client.remove(URL, tmp_path / "out.webm")

    with pytest.raises(TransientError):
        run_virtual(main())
    with Journal.open(journal) as j:
        (record,) = j.unfinished()
        assert record.step == Step.SUBMITTING
        assert "outcome unknown" in (record.error or "")
        assert record.reserved == PRICE  # still held: the job may exist
    assert provider.submissions == 1

    (outcome,) = _resume(provider, journal)
    assert outcome.ok, outcome.error
    assert provider.submissions == 1
    assert provider.replays == 1
    assert provider.charges == 1


def test_an_unknown_submit_is_not_resent_to_a_backend_that_ignores_keys(tmp_path: Path) -> None:
    provider = FakeProvider(lose_next_answers=1, honours_keys=False)
    journal = tmp_path / "journal.sqlite"

    async def main() -> None:
        async with _client(provider, journal) as client:
            await client.remove(URL, tmp_path / "out.webm")

    with pytest.raises(TransientError):
        run_virtual(main())
    (outcome,) = _resume(provider, journal)
    assert not outcome.ok
    assert "does not honour idempotency keys" in (outcome.error or "")
    assert provider.submissions == 1  # never sent again: it could have been charged twice
    with Journal.open(journal) as j:
        (record,) = j.unfinished()
        assert record.step == Step.SUBMITTING
        assert record.reserved == PRICE


def test_only_a_definite_refusal_releases_the_reservation(tmp_path: Path) -> None:
    provider = FakeProvider(reject_next=1)
    journal = tmp_path / "journal.sqlite"

    async def main() -> None:
        async with _client(provider, journal) as client:
            await client.remove(URL, tmp_path / "out.webm")

    with pytest.raises(RequestRejectedError):
        run_virtual(main())
    with Journal.open(journal) as j:
        (record,) = j.jobs()
        assert record.step == Step.REFUSED
        assert record.spent == 0
        assert record.committed == 0
        assert "not acceptable" in (record.error or "")
    assert _resume(provider, journal) == []


def test_a_failed_job_ends_in_the_journal_and_is_not_resumed(tmp_path: Path) -> None:
    provider = FakeProvider(fail=True)
    journal = tmp_path / "journal.sqlite"

    async def main() -> None:
        async with _client(provider, journal) as client:
            await client.remove(URL, tmp_path / "out.webm")

    with pytest.raises(JobFailedError):
        run_virtual(main())
    with Journal.open(journal) as j:
        (record,) = j.jobs()
        assert record.step == Step.DONE
        assert record.state is vidmatte.JobState.FAILED
        assert record.spent == 0
    assert _resume(provider, journal) == []


def test_an_intent_journaled_by_a_dead_process_is_submitted_once(tmp_path: Path) -> None:
    provider = FakeProvider()
    journal = tmp_path / "journal.sqlite"
    dest = tmp_path / "out.webm"
    request = AsyncClient(plugins=fake_plugins(provider), environ={}).request(URL, dest=dest)
    with Journal.open(journal) as j:
        j.intend(
            "k-intent",
            backend="fake",
            run_id="dead",
            estimate=PRICE,
            source=URL,
            dest=str(dest),
            request=describe_request(request),
        )
    (outcome,) = _resume(provider, journal)
    assert outcome.ok, outcome.error
    assert provider.by_key == {"k-intent": "job-1"}
    assert dest.read_bytes() == b"result of job-1"


# -- a frame backend: checkpoints make resubmitting free ----------------------------------------------


class CountingMatter:
    """A frame matter that charges 0.01 a frame and counts every frame it was asked for."""

    name = "frames"
    limits = FrameLimits(batch_size=1, max_concurrency=1)

    def __init__(self, asked: list[int], stop_after: int | None = None, fail_after: int | None = None) -> None:
        self.asked = asked
        self.stop_after = stop_after
        self.fail_after = fail_after

    async def matte(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        if self.stop_after is not None and len(self.asked) >= self.stop_after:
            await asyncio.Event().wait()  # hangs: the "process" is killed here
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise MediaError("no space left on device while keeping masks")
        self.asked.append(len(frames))
        masks = []
        for frame in frames:
            mask = np.zeros(frame.shape[:2], np.uint8)
            mask[8:40, 16:48] = 255
            masks.append(mask)
        return masks

    def cost_per_call(self) -> Cost:
        return Cost(Decimal("0.01"), "USD", CostKind.ESTIMATED, "per frame")

    async def aclose(self) -> None:
        pass


class FramePlugin:
    def __init__(self, asked: list[int], stop_after: int | None, fail_after: int | None = None) -> None:
        self.asked = asked
        self.stop_after = stop_after
        self.fail_after = fail_after

    @vidmatte.hookimpl
    def vidmatte_register_backends(self) -> list[vidmatte.BackendSpec]:
        def make(context: BackendContext) -> vidmatte.MattingBackend:
            matter = CountingMatter(self.asked, self.stop_after, self.fail_after)
            return frame_backend(matter, context, capabilities=Capabilities())

        return [vidmatte.BackendSpec("frames", make)]


def test_a_frame_job_killed_midway_resumes_from_its_checkpoints_without_paying_again(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 3, frames=8)
    journal = tmp_path / "journal.sqlite"
    dest = tmp_path / "out.webm"
    asked: list[int] = []

    def client(stop_after: int | None, **kwargs: object) -> AsyncClient:
        manager = vidmatte.PluginManager()
        manager.register(FramePlugin(asked, stop_after))
        return AsyncClient(
            plugins=manager,
            environ={},
            settings=vidmatte.Settings(backend="frames"),
            journal=journal,
            cache_dir=tmp_path / "cache",
            **kwargs,  # type: ignore[arg-type]
        )

    async def crash() -> None:
        checkpoints = asyncio.Event()

        def events(event: JobEvent) -> None:
            if event.kind is EventKind.CHECKPOINT and event.data.get("calls") == 3:
                checkpoints.set()

        first = client(stop_after=3, events=events)
        task = asyncio.create_task(first.remove(clip, dest))
        await checkpoints.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await first.aclose()

    asyncio.run(crash())
    assert sum(asked) == 3
    with Journal.open(journal) as j:
        (record,) = j.unfinished()
        assert record.calls == 3
        assert record.spent == Decimal("0.03")  # the checkpoints prove what was paid

    async def resume() -> list[vidmatte.ResumeOutcome]:
        async with client(stop_after=None) as second:
            return await second.resume()

    (outcome,) = asyncio.run(resume())
    assert outcome.ok, outcome.error
    assert sum(asked) == 8  # 3 before the crash + the 5 missing ones: no frame bought twice
    from vidmatte.media import read_frames_rgba

    frames = list(read_frames_rgba(dest))
    assert len(frames) == 8
    assert frames[0][24, 32, 3] > 200
    assert frames[0][2, 2, 3] < 50
    with Journal.open(journal) as j:
        (record,) = j.jobs()
        assert record.succeeded
        assert record.spent == Decimal("0.08")


def test_a_reconciling_submit_that_is_refused_keeps_the_job_and_its_reservation(tmp_path: Path) -> None:
    provider = FakeProvider(lose_next_answers=1)
    journal = tmp_path / "journal.sqlite"

    async def main() -> None:
        async with _client(provider, journal) as client:
            await client.remove(URL, tmp_path / "out.webm")

    with pytest.raises(TransientError):
        run_virtual(main())
    # The provider now refuses the second submit (say, a body it finds different under the same key):
    # that must not be taken for "nothing ran", since the first submit did create the job.
    provider.reject_next = 1
    (outcome,) = _resume(provider, journal)
    assert not outcome.ok
    assert "not acceptable" in (outcome.error or "")
    assert "stays journaled" in (outcome.error or "")
    with Journal.open(journal) as j:
        (record,) = j.unfinished()
        assert record.step == Step.SUBMITTING
        assert record.committed == PRICE
    (outcome,) = _resume(provider, journal)
    assert outcome.ok, outcome.error
    assert (provider.submissions, provider.charges) == (1, 1)


def test_a_failed_frame_job_runs_again_under_its_key_in_the_next_batch(tmp_path: Path) -> None:
    from vidmatte._batch import BatchItem, run_batch

    clip = make_clip(tmp_path / "clip.mp4", 5, frames=6)
    journal = tmp_path / "journal.sqlite"
    out = tmp_path / "out"
    out.mkdir()
    asked: list[int] = []

    def batch(fail_after: int | None) -> list[object]:
        manager = vidmatte.PluginManager()
        manager.register(FramePlugin(asked, None, fail_after))

        async def main() -> list[object]:
            async with AsyncClient(
                plugins=manager,
                environ={},
                settings=vidmatte.Settings(backend="frames"),
                journal=journal,
                cache_dir=tmp_path / "cache",
            ) as client:
                return list(await run_batch(client, [BatchItem(clip, out / "clip.webm")]))

        return asyncio.run(main())

    (first,) = batch(fail_after=4)
    assert first.status == "failed"  # type: ignore[attr-defined]
    assert "no space left" in first.error  # type: ignore[attr-defined]
    assert sum(asked) == 4
    (second,) = batch(fail_after=None)
    assert second.status == "resumed", second.error  # type: ignore[attr-defined]
    assert sum(asked) == 6  # the 4 masks of the failed run were kept, not bought again
    assert (out / "clip.webm").exists()
    with Journal.open(journal) as j:
        (record,) = j.jobs()
        assert record.succeeded
        assert record.spent == Decimal("0.06")

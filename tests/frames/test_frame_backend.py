"""The frame pipeline as a MattingBackend: order, limits, resume, economy, cancel, lookups."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from frames_helpers import FRAMES, FakeMatter, index_clip, level, make_backend, wait

from vidmatte import (
    CancelOutcome,
    EventKind,
    FrameLimits,
    JobEvent,
    JobHandle,
    JobState,
    MattingRequest,
    OutputFormat,
    OutputSpec,
    Source,
)
from vidmatte.errors import ConfigurationError, NotFoundError, UnsupportedCapabilityError
from vidmatte.media import probe, read_frames_rgba

EXACT = {"smoothing": False, "refine": False}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_clip(tmp_path_factory.mktemp("clip") / "levels.mp4")


def request(clip: Path, fmt: OutputFormat = OutputFormat.PNG, **options: object) -> MattingRequest:
    return MattingRequest(Source(path=str(clip)), OutputSpec(fmt), options={**EXACT, **options})


async def run(backend, req: MattingRequest, key: str, dest: Path):  # type: ignore[no-untyped-def]
    handle = await backend.submit(req, idempotency_key=key)
    snapshot = await wait(backend, handle)
    assert snapshot.state is JobState.SUCCEEDED, snapshot.error
    await backend.download(handle, snapshot.artefact(), dest)
    return handle, snapshot


def close(got: list[int], expected: list[int]) -> bool:
    """Same frames (levels survive YUV round trips within 2)."""
    return len(got) == len(expected) and all(abs(g - e) <= 2 for g, e in zip(got, expected, strict=True))


def alphas(path: Path) -> list[int]:
    return [round(float(f[..., 3].mean())) for f in read_frames_rgba(path)]


def test_frames_come_back_in_order_under_concurrency(clip: Path, tmp_path: Path) -> None:
    # Random delays make calls finish out of order; the output must not be.
    matter = FakeMatter(FrameLimits(batch_size=2, max_concurrency=4), jitter=0.03)
    backend = make_backend(matter, tmp_path / "cache")

    async def main() -> None:
        _, snapshot = await run(backend, request(clip), "order", tmp_path / "out")
        assert snapshot.artefact().format is OutputFormat.PNG
        assert snapshot.artefact().url.startswith("file://")
        await backend.aclose()

    asyncio.run(main())
    got = alphas(tmp_path / "out")
    assert len(got) == FRAMES
    assert all(abs(g - level(i)) <= 2 for i, g in enumerate(got)), got
    assert matter.closed


def test_concurrency_limit_is_held(clip: Path, tmp_path: Path) -> None:
    matter = FakeMatter(FrameLimits(batch_size=2, max_concurrency=2), delay=0.02)
    backend = make_backend(matter, tmp_path / "cache")
    asyncio.run(run(backend, request(clip), "limit", tmp_path / "out"))
    assert matter.max_in_flight == 2


def test_requests_per_second_is_held(clip: Path, tmp_path: Path) -> None:
    # 12 calls at 40/s with a small burst cannot finish in much less than (12 - burst) / 38 s.
    matter = FakeMatter(FrameLimits(batch_size=2, max_concurrency=8, requests_per_second=40))
    backend = make_backend(matter, tmp_path / "cache")
    started = time.monotonic()
    asyncio.run(run(backend, request(clip), "rate", tmp_path / "out"))
    assert time.monotonic() - started >= (12 - 5) / 40


def test_progress_and_checkpoint_events(clip: Path, tmp_path: Path) -> None:
    events: list[JobEvent] = []
    matter = FakeMatter(FrameLimits(batch_size=4, max_concurrency=1))
    backend = make_backend(matter, tmp_path / "cache", events)
    asyncio.run(run(backend, request(clip), "events", tmp_path / "out"))
    progress = [e.frames_done for e in events if e.kind is EventKind.PROGRESS]
    assert progress == sorted(progress)
    assert progress[-1] == FRAMES
    assert all(e.frames_total == FRAMES and e.job_key == "events" for e in events)
    checkpoints = [e for e in events if e.kind is EventKind.CHECKPOINT]
    # One per call: four frames each, or fewer when a batch is sent early to keep frames moving.
    assert len(checkpoints) >= FRAMES // 4
    assert checkpoints[-1].data["frames_matted"] == FRAMES


def test_resume_never_mattes_a_frame_twice(clip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    crashing = FakeMatter(FrameLimits(batch_size=4, max_concurrency=1), fail_after=12)

    async def first() -> None:
        backend = make_backend(crashing, cache)
        handle = await backend.submit(request(clip), idempotency_key="resume")
        snapshot = await wait(backend, handle)
        assert snapshot.state is JobState.FAILED
        assert snapshot.error is not None
        assert "fell over" in snapshot.error.message

    asyncio.run(first())
    assert len(crashing.sent) >= 12
    # A new process (new backend, same cache and key) asks only for the frames not yet matted.
    fresh = FakeMatter(FrameLimits(batch_size=4, max_concurrency=1))
    backend = make_backend(fresh, cache)
    _, snapshot = asyncio.run(run(backend, request(clip), "resume", tmp_path / "out"))
    assert len(fresh.sent) == FRAMES - len(crashing.sent)
    assert close(sorted(crashing.sent + fresh.sent), [level(i) for i in range(FRAMES)])
    assert snapshot.cost is not None
    assert snapshot.cost.amount == Decimal("0.01") * len(fresh.sent)
    got = alphas(tmp_path / "out")
    assert all(abs(g - level(i)) <= 2 for i, g in enumerate(got))


def test_frame_step_sends_every_nth_frame_and_interpolates(clip: Path, tmp_path: Path) -> None:
    matter = FakeMatter(FrameLimits(batch_size=2, max_concurrency=2))
    backend = make_backend(matter, tmp_path / "cache")
    req = request(clip, frame_step=4)

    async def main() -> None:
        estimate = await backend.estimate(req)
        # Frames 0, 4, ..., 20 and the last one (23).
        assert estimate.amount == Decimal("0.07")
        await run(backend, req, "step", tmp_path / "out")

    asyncio.run(main())
    assert close(sorted(matter.sent), [level(i) for i in (0, 4, 8, 12, 16, 20, 23)])
    got = alphas(tmp_path / "out")
    assert len(got) == FRAMES
    # Levels rise linearly, so interpolated masks land on the frames' own levels.
    assert all(abs(g - level(i)) <= 2 for i, g in enumerate(got)), got


def test_change_threshold_skips_frames_that_did_not_change(tmp_path: Path) -> None:
    still = index_clip(tmp_path / "still.mp4", still=True)
    matter = FakeMatter()
    backend = make_backend(matter, tmp_path / "cache")
    _, snapshot = asyncio.run(run(backend, request(still, change_threshold=0.02), "still", tmp_path / "out"))
    assert len(matter.sent) == 1
    assert len(alphas(tmp_path / "out")) == FRAMES
    assert snapshot.cost is not None
    assert snapshot.cost.amount == Decimal("0.01")


def test_bad_options_are_one_line_errors(clip: Path, tmp_path: Path) -> None:
    backend = make_backend(FakeMatter(), tmp_path / "cache")
    for options in ({"frame_step": 0}, {"change_threshold": "lots"}, {"smoothing": "yes"}):
        with pytest.raises(ConfigurationError) as excinfo:
            asyncio.run(backend.submit(request(clip, **options), idempotency_key="bad"))
        assert "\n" not in str(excinfo.value)


def test_cancel_stops_the_job(clip: Path, tmp_path: Path) -> None:
    matter = FakeMatter(FrameLimits(batch_size=1, max_concurrency=1), delay=0.05)
    backend = make_backend(matter, tmp_path / "cache")

    async def main() -> None:
        handle = await backend.submit(request(clip), idempotency_key="cancel")
        while not matter.sent:  # noqa: ASYNC110 - waiting on the fake's own record
            await asyncio.sleep(0.01)
        assert await backend.cancel(handle) is CancelOutcome.ACCEPTED
        snapshot = await backend.poll(handle)
        assert snapshot.state is JobState.CANCELLED
        calls = len(matter.sent)
        await asyncio.sleep(0.2)
        assert len(matter.sent) == calls  # nothing more was sent
        assert await backend.cancel(handle) is CancelOutcome.ALREADY_TERMINAL
        with pytest.raises(NotFoundError):
            await backend.download(handle, None, tmp_path / "out")  # type: ignore[arg-type]

    asyncio.run(main())
    assert len(matter.sent) < FRAMES
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache").rglob("output*"))


def test_finished_job_is_found_by_another_process(clip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    handle, _ = asyncio.run(
        run(make_backend(FakeMatter(), cache), request(clip, OutputFormat.WEBM), "k1", tmp_path / "a.webm")
    )
    stranger = make_backend(FakeMatter(), cache)

    async def main() -> None:
        reattached = JobHandle.from_json(handle.to_json())
        snapshot = await stranger.poll(reattached)
        assert snapshot.state is JobState.SUCCEEDED
        await stranger.download(reattached, snapshot.artefact(), tmp_path / "b.webm")
        # Submitting the same key again does not redo the work.
        again = await stranger.submit(request(clip, OutputFormat.WEBM), idempotency_key="k1")
        assert (await stranger.poll(again)).state is JobState.SUCCEEDED
        with pytest.raises(NotFoundError):
            await stranger.poll(JobHandle(backend="fake", job_id="never", submitted_at=0.0))

    asyncio.run(main())
    info = probe(tmp_path / "b.webm")
    assert info.frame_count == FRAMES
    assert (tmp_path / "a.webm").read_bytes() == (tmp_path / "b.webm").read_bytes()


def test_bytes_sources_and_urls(clip: Path, tmp_path: Path) -> None:
    matter = FakeMatter()
    backend = make_backend(matter, tmp_path / "cache")
    req = MattingRequest(Source(data=clip.read_bytes()), OutputSpec(OutputFormat.ZIP), options=EXACT)
    asyncio.run(run(backend, req, "bytes", tmp_path / "out.zip"))
    assert len(alphas(tmp_path / "out.zip")) == FRAMES
    with pytest.raises(UnsupportedCapabilityError):
        asyncio.run(backend.submit(MattingRequest(Source(url="https://example.com/v.mp4")), idempotency_key="u"))


def test_transparent_mp4_is_refused_at_submit(clip: Path, tmp_path: Path) -> None:
    backend = make_backend(FakeMatter(), tmp_path / "cache")
    with pytest.raises(ConfigurationError, match="mp4"):
        asyncio.run(backend.submit(request(clip, OutputFormat.MP4), idempotency_key="mp4"))


def test_a_broken_mask_count_fails_the_job(clip: Path, tmp_path: Path) -> None:
    class Short(FakeMatter):
        async def matte(self, frames):  # type: ignore[no-untyped-def]
            return (await super().matte(frames))[:-1]

    backend = make_backend(Short(), tmp_path / "cache")

    async def main() -> None:
        handle = await backend.submit(request(clip), idempotency_key="short")
        snapshot = await wait(backend, handle)
        assert snapshot.state is JobState.FAILED
        assert snapshot.error is not None
        assert "masks for" in snapshot.error.message

    asyncio.run(main())


def test_low_resolution_masks_are_scaled_up(clip: Path, tmp_path: Path) -> None:
    class Tiny(FakeMatter):
        async def matte(self, frames):  # type: ignore[no-untyped-def]
            masks = await super().matte(frames)
            return [m[::8, ::8] for m in masks]

    backend = make_backend(Tiny(), tmp_path / "cache")
    asyncio.run(run(backend, request(clip), "tiny", tmp_path / "out"))
    frames = list(read_frames_rgba(tmp_path / "out"))
    assert frames[0].shape[:2] == (64, 96)
    assert np.abs(frames[5][..., 3].astype(int) - level(5)).max() <= 2


def test_trim_keeps_a_slice_with_its_audio(tmp_path: Path) -> None:
    from vidmatte.media import make_sample_clip

    clip = make_sample_clip(tmp_path / "tone.mp4", seconds=1.2, size=(96, 64))
    backend = make_backend(FakeMatter(), tmp_path / "cache")
    req = MattingRequest(Source(path=str(clip)), OutputSpec(OutputFormat.WEBM, trim=(0.4, 0.8)), options=EXACT)
    asyncio.run(run(backend, req, "trim", tmp_path / "out.webm"))
    info = probe(tmp_path / "out.webm")
    assert info.frame_count == 10
    assert info.has_audio
    assert info.duration == pytest.approx(0.4, abs=0.06)


def test_failed_job_resubmitted_in_the_same_process_resumes(clip: Path, tmp_path: Path) -> None:
    matter = FakeMatter(FrameLimits(batch_size=4, max_concurrency=1), fail_after=8)
    backend = make_backend(matter, tmp_path / "cache")

    async def main() -> None:
        handle = await backend.submit(request(clip), idempotency_key="again")
        assert (await wait(backend, handle)).state is JobState.FAILED
        matter.fail_after = None  # the provider recovered
        handle = await backend.submit(request(clip), idempotency_key="again")
        assert (await wait(backend, handle)).state is JobState.SUCCEEDED

    asyncio.run(main())
    assert close(sorted(matter.sent), [level(i) for i in range(FRAMES)])


def test_estimate_of_bytes_leaves_nothing_behind(clip: Path, tmp_path: Path) -> None:
    backend = make_backend(FakeMatter(), tmp_path / "cache")
    req = MattingRequest(Source(data=clip.read_bytes()), options={"frame_step": 2})
    estimate = asyncio.run(backend.estimate(req))
    assert estimate.amount == Decimal("0.01") * 13  # frames 0, 2, ..., 22 and the last
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.bin"))


def test_old_job_folders_are_pruned(tmp_path: Path) -> None:
    import os

    from vidmatte._frames_store import FINISHED_TTL, PARTIAL_TTL, JobStore, prune

    now = 1_000_000_000.0
    finished, partial, fresh = (JobStore(tmp_path, key) for key in ("finished", "partial", "fresh"))
    for store in (finished, partial, fresh):
        store.open()
    finished.mark_done({"path": str(tmp_path / "nothing")})
    os.utime(finished.dir / "done.json", (now - FINISHED_TTL - 1,) * 2)
    os.utime(partial.dir, (now - PARTIAL_TTL - 1,) * 2)
    os.utime(fresh.dir, (now - 60,) * 2)
    unrelated = tmp_path / "keep-me"
    unrelated.mkdir()
    assert prune(tmp_path, now=now) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.dir.name, "keep-me"])


def test_a_job_stopped_by_closing_its_backend_is_resumed_by_another(clip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    slow = FakeMatter(FrameLimits(batch_size=4, max_concurrency=1), delay=0.03)
    fresh = FakeMatter(FrameLimits(batch_size=4, max_concurrency=1))

    async def main() -> JobState:
        first = make_backend(slow, cache)
        handle = await first.submit(request(clip), idempotency_key="handover")
        while len(slow.sent) < 8:  # noqa: ASYNC110 - waiting on the fake's own record
            await asyncio.sleep(0.01)
        await first.aclose()  # a process going away: the job is stopped, not cancelled
        second = make_backend(fresh, cache)
        snapshot = await wait(second, JobHandle.from_json(handle.to_json()))
        await second.download(handle, snapshot.artefact(), tmp_path / "out")
        return snapshot.state

    assert asyncio.run(main()) is JobState.SUCCEEDED
    # The second instance asked only for the frames the first had not paid for.
    assert close(sorted(slow.sent + fresh.sent), [level(i) for i in range(FRAMES)])
    got = alphas(tmp_path / "out")
    assert all(abs(g - level(i)) <= 2 for i, g in enumerate(got))


def test_a_cancelled_job_stays_cancelled_for_other_instances(clip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    slow = FakeMatter(FrameLimits(batch_size=1, max_concurrency=1), delay=0.03)

    async def main() -> JobState:
        first = make_backend(slow, cache)
        handle = await first.submit(request(clip), idempotency_key="stop")
        while not slow.sent:  # noqa: ASYNC110 - waiting on the fake's own record
            await asyncio.sleep(0.01)
        assert await first.cancel(handle) is CancelOutcome.ACCEPTED
        await first.aclose()
        other = make_backend(FakeMatter(), cache)
        return (await other.poll(handle)).state

    assert asyncio.run(main()) is JobState.CANCELLED


def test_a_job_left_on_a_still_loop_is_taken_over(clip: Path, tmp_path: Path) -> None:
    # Two sync clients: each runs its own event loop, only during its calls.  A job submitted
    # by the first would never advance while the second waits for it, so the second takes it over.
    cache = tmp_path / "cache"
    first_matter, second_matter = FakeMatter(), FakeMatter()
    first = make_backend(first_matter, cache)
    still = asyncio.new_event_loop()
    try:
        handle = still.run_until_complete(first.submit(request(clip), idempotency_key="sync"))

        async def second_client() -> JobState:
            second = make_backend(second_matter, cache)
            snapshot = await wait(second, JobHandle.from_json(handle.to_json()))
            await second.aclose()
            return snapshot.state

        assert asyncio.run(second_client()) is JobState.SUCCEEDED
        still.run_until_complete(first.aclose())  # the first client closes: its stale run ends quietly
    finally:
        still.close()
    assert close(sorted(first_matter.sent + second_matter.sent), [level(i) for i in range(FRAMES)])
    assert len(alphas(next(cache.glob("sync-*")) / "output")) == FRAMES

"""End to end on a real socket: a clip through the prama backend and the emulator, faults on.

The output's alpha is compared, frame by frame, with the masks the emulator
returned: every output frame must match the mask made from *its* frame
(order), at the frame's size (scaling), and the emulator must have charged
exactly the frames the plan sent (resume and frame economy never pay twice).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from vidmatte_prama.emulator import Emulator, EmulatorConfig, RecordedMask
from vidmatte_prama.plugin import create_backend
from vidmatte_prama.testing import FAKE_KEY, running_emulator

import vidmatte
from vidmatte import BackendContext, EventKind, JobEvent, JobState, MattingRequest, OutputFormat, OutputSpec, Source
from vidmatte.media import read_frames_rgba

WIDTH, HEIGHT, FRAMES, FPS = 160, 120, 24, 12
MAX_SIDE = 64  # uploads are 64 x 48: masks come back smaller than the frames and must be scaled up


def _frame(index: int) -> NDArray[np.uint8]:
    """A dark frame with a bright square moving 5 px right and 2 px down per frame."""
    frame = np.full((HEIGHT, WIDTH, 3), 24, np.uint8)
    x, y = 10 + 5 * index, 20 + 2 * index
    frame[y : y + 40, x : x + 30] = (235, 220, 200)
    return frame


def _make_clip(path: Path) -> list[NDArray[np.uint8]]:
    frames = [_frame(i) for i in range(FRAMES)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "10"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def _thumb(image: NDArray[np.uint8]) -> NDArray[np.float64]:
    return np.asarray(Image.fromarray(image, "RGB").convert("L").resize((16, 16), Image.Resampling.BOX), float)


def _record_for_each_frame(frames: list[NDArray[np.uint8]], records: list[RecordedMask]) -> list[RecordedMask | None]:
    """The emulator's record of each frame (by its uploaded image), or None for frames never sent."""
    found: list[RecordedMask | None] = []
    for frame in frames:
        thumb = _thumb(frame)
        distances = [float(np.abs(r.thumbnail - thumb).mean()) for r in records]
        best = int(np.argmin(distances))
        found.append(records[best] if distances[best] < 4.0 else None)
    return found


def _scaled(mask: NDArray[np.uint8]) -> NDArray[np.float64]:
    return np.asarray(Image.fromarray(mask, "L").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), float)


def _check_alpha_matches(out: Path, frames: list[NDArray[np.uint8]], emulator: Emulator, *, strict: bool) -> None:
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores"
        assert stream.codec_context.pix_fmt.startswith("yuva444p")
    alphas = [frame[..., 3].astype(float) for frame in read_frames_rgba(out)]
    assert len(alphas) == FRAMES
    records = [r for r in emulator.records if not r.dropped]
    mine = _record_for_each_frame(frames, records)
    assert all(r is not None for r in mine), "every frame was sent"
    masks = [_scaled(r.mask) for r in mine if r is not None]
    for index, alpha in enumerate(alphas):
        differences = [float(np.abs(alpha - mask).mean()) for mask in masks]
        # Its own frame's mask fits best, far better than its neighbours' (order, no shift).
        assert int(np.argmin(differences)) == index, (index, differences[max(0, index - 2) : index + 3])
        if strict:
            assert differences[index] < 3.0, (index, differences[index])
        else:
            assert differences[index] < 12.0, (index, differences[index])
    assert {r.image_size for r in records} == {(MAX_SIDE, MAX_SIDE * HEIGHT // WIDTH)}


async def _run_job(
    context: BackendContext, source: Path, dest: Path, options: Mapping[str, Any], *, key: str = "job-1"
) -> vidmatte.JobSnapshot:
    backend = create_backend(context)
    try:
        request = MattingRequest(Source(path=str(source)), OutputSpec(format=OutputFormat.MOV), options=dict(options))
        handle = await backend.submit(request, idempotency_key=key)
        snapshot = await backend.poll(handle)
        for _ in range(1200):
            if snapshot.state.is_terminal:
                break
            await asyncio.sleep(0.05)
            snapshot = await backend.poll(handle)
        if snapshot.state is JobState.SUCCEEDED:
            artefact = snapshot.artefact()
            assert artefact is not None
            await backend.download(handle, artefact, dest)
        return snapshot
    finally:
        await backend.aclose()


def _context(emulator: Emulator, cache: Path, events: list[JobEvent] | None = None, **settings: Any) -> BackendContext:
    # attempts=8: with faults on every ~8th request, five tries fail a frame in ~1% of runs.
    config = {
        "base_url": emulator.base_url,
        "max_side": MAX_SIDE,
        "price_per_image": "0.004",
        "attempts": 8,
        **settings,
    }
    return BackendContext(
        settings=config,
        env={"PRAMA_API_KEY": FAKE_KEY},
        cache_dir=cache,
        events=events.append if events is not None else (lambda event: None),
    )


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, list[NDArray[np.uint8]]]:
    path = tmp_path / "clip.mp4"
    return path, _make_clip(path)


def _faulty() -> EmulatorConfig:
    return EmulatorConfig(
        latency=0.01,
        requests_per_second=40,
        error_rate=0.08,
        drop_rate=0.04,
        seed=7,
        script=["503", "drop", "429", "drop-after", "500"],
    )


def test_backend_alpha_matches_emulator_masks_with_faults(
    tmp_path: Path, clip: tuple[Path, list[NDArray[np.uint8]]]
) -> None:
    source, frames = clip
    with running_emulator(_faulty()) as emulator:
        dest = tmp_path / "out.mov"
        context = _context(emulator, tmp_path / "cache", requests_per_second=30)
        snapshot = asyncio.run(_run_job(context, source, dest, {"smoothing": False, "refine": False}))
        assert snapshot.state is JobState.SUCCEEDED, snapshot.error
        _check_alpha_matches(dest, frames, emulator, strict=True)
        stats = emulator.stats(FAKE_KEY)
        assert stats.statuses.get(503, 0) + stats.statuses.get(500, 0) >= 2
        assert stats.statuses.get(0, 0) >= 2  # dropped connections, retried
        # Every frame charged once, plus the one whose answer was dropped after charging.
        assert stats.masks == FRAMES + 1
        assert snapshot.cost is not None
        assert snapshot.cost.amount == Decimal("0.004") * FRAMES


def test_resume_never_pays_twice(tmp_path: Path, clip: tuple[Path, list[NDArray[np.uint8]]]) -> None:
    source, frames = clip
    events: list[JobEvent] = []
    with running_emulator(EmulatorConfig(latency=0.01)) as emulator:
        cache = tmp_path / "cache"

        def revoke_key_midway(event: JobEvent) -> None:
            events.append(event)
            if event.kind is EventKind.CHECKPOINT and event.data.get("calls", 0) >= 10:
                emulator.configure(keys=frozenset({"someone-else"}))

        context = BackendContext(
            settings={"base_url": emulator.base_url, "max_side": MAX_SIDE, "concurrency": 1},
            env={"PRAMA_API_KEY": FAKE_KEY},
            cache_dir=cache,
            events=revoke_key_midway,
        )
        first = asyncio.run(_run_job(context, source, tmp_path / "first.mov", {"smoothing": False, "refine": False}))
        assert first.state is JobState.FAILED
        paid_first = emulator.stats(FAKE_KEY).masks
        assert 10 <= paid_first < FRAMES
        checkpoints = [e for e in events if e.kind is EventKind.CHECKPOINT]
        assert checkpoints
        assert checkpoints[-1].data["frames_matted"] == paid_first

        emulator.configure(keys=frozenset({FAKE_KEY}))
        dest = tmp_path / "out.mov"
        second = asyncio.run(_run_job(_context(emulator, cache), source, dest, {"smoothing": False, "refine": False}))
        assert second.state is JobState.SUCCEEDED, second.error
        assert emulator.stats(FAKE_KEY).masks == FRAMES  # the first run's frames were not sent again
        _check_alpha_matches(dest, frames, emulator, strict=True)


def test_frame_economy_estimate_and_calls(tmp_path: Path, clip: tuple[Path, list[NDArray[np.uint8]]]) -> None:
    source, _ = clip
    with running_emulator(EmulatorConfig()) as emulator:
        context = _context(emulator, tmp_path / "cache")

        async def main() -> tuple[vidmatte.Cost, vidmatte.JobSnapshot]:
            backend = create_backend(context)
            request = MattingRequest(Source(path=str(source)), OutputSpec(format=OutputFormat.MOV), {"frame_step": 4})
            try:
                estimate = await backend.estimate(request)
            finally:
                await backend.aclose()
            snapshot = await _run_job(context, source, tmp_path / "out.mov", {"frame_step": 4})
            return estimate, snapshot

        estimate, snapshot = asyncio.run(main())
        planned = len(range(0, FRAMES, 4)) + 1  # every 4th frame and the last one
        assert estimate.amount == Decimal("0.004") * planned
        assert snapshot.state is JobState.SUCCEEDED, snapshot.error
        assert emulator.stats(FAKE_KEY).masks == planned
        assert snapshot.cost is not None
        assert snapshot.cost.amount == estimate.amount
        assert len(list(read_frames_rgba(tmp_path / "out.mov"))) == FRAMES


def _cli() -> list[str] | None:
    script = shutil.which("vidmatte", path=str(Path(sys.executable).parent))
    if script is None:
        return None
    probe = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    return [script] if probe.returncode == 0 and "remove" in probe.stdout else None


def test_cli_remove_against_the_emulator(tmp_path: Path, clip: tuple[Path, list[NDArray[np.uint8]]]) -> None:
    command = _cli()
    if command is None:
        pytest.skip("the vidmatte CLI (remove) is not installed yet")
    source, frames = clip
    with running_emulator(_faulty()) as emulator:
        (tmp_path / "vidmatte.toml").write_text(
            f'[backends.prama]\nbase_url = "{emulator.base_url}"\nmax_side = {MAX_SIDE}\nrequests_per_second = 30\nattempts = 8\n'
        )
        env = {
            **os.environ,
            "PRAMA_API_KEY": FAKE_KEY,
            "VIDMATTE_CONFIG": str(tmp_path / "vidmatte.toml"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
            "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        }
        result = subprocess.run(
            [*command, "remove", str(source), "-o", str(tmp_path / "out.mov"), "--backend", "prama"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert FAKE_KEY not in result.stdout + result.stderr
        _check_alpha_matches(tmp_path / "out.mov", frames, emulator, strict=False)
        assert emulator.stats(FAKE_KEY).masks == FRAMES + 1


class _CostHooks:
    """A plugin recording the cost hooks."""

    def __init__(self) -> None:
        self.estimated: list[Decimal] = []
        self.incurred: list[Decimal] = []

    @vidmatte.hookimpl
    def vidmatte_cost_estimated(self, job_key: str, backend: str, request: MattingRequest, cost: vidmatte.Cost) -> None:
        self.estimated.append(cost.amount)

    @vidmatte.hookimpl
    def vidmatte_cost_incurred(
        self, job_key: str, backend: str, cost: vidmatte.Cost, snapshot: vidmatte.JobSnapshot | None
    ) -> None:
        self.incurred.append(cost.amount)


def test_client_reports_planned_and_charged_costs_through_the_hooks(
    tmp_path: Path, clip: tuple[Path, list[NDArray[np.uint8]]]
) -> None:
    source, _ = clip
    hooks = _CostHooks()
    plugins = vidmatte.load_plugins()
    plugins.register(hooks, name="cost-recorder")
    with running_emulator(EmulatorConfig(script=["drop-after"])) as emulator:
        settings = vidmatte.Settings(
            backend="prama",
            backends={"prama": {"base_url": emulator.base_url, "max_side": MAX_SIDE, "price_per_image": "0.004"}},
        )

        async def main() -> vidmatte.Cost:
            # The default poll placement expects minute-scale remote jobs; this one takes a second.
            policy = vidmatte.PollPolicy(prior_queue=0.2, prior_speed=0.2, target_gap=0.2, max_gap=0.5)
            async with vidmatte.AsyncClient(
                settings=settings,
                plugins=plugins,
                environ={"PRAMA_API_KEY": FAKE_KEY},
                cache_dir=tmp_path / "cache",
                journal=False,
                scheduler=vidmatte.Scheduler(policy=policy),
            ) as client:
                result = await client.remove(source, tmp_path / "out.mov", options={"frame_step": 3}, timeout=120)
                return result.cost

        cost = asyncio.run(main())
        planned = len(range(0, FRAMES, 3)) + 1
        assert hooks.estimated == [Decimal("0.004") * planned]
        # Charged: the frames that returned a mask to us.  (The emulator also charged the
        # answer it dropped after making it: a provider-side charge we never saw.)
        assert hooks.incurred == [Decimal("0.004") * planned]
        assert cost.amount == Decimal("0.004") * planned
        assert emulator.stats(FAKE_KEY).masks == planned + 1


def test_bytes_source(tmp_path: Path, clip: tuple[Path, list[NDArray[np.uint8]]]) -> None:
    source, frames = clip
    with running_emulator(EmulatorConfig()) as emulator:
        context = _context(emulator, tmp_path / "cache")

        async def main() -> vidmatte.JobSnapshot:
            backend = create_backend(context)
            try:
                output = OutputSpec(format=OutputFormat.MOV)
                request = MattingRequest(
                    Source(data=source.read_bytes()), output, {"smoothing": False, "refine": False}
                )
                handle = await backend.submit(request, idempotency_key="bytes")
                for _ in range(1200):
                    snapshot = await backend.poll(handle)
                    if snapshot.state.is_terminal:
                        break
                    await asyncio.sleep(0.05)
                artefact = snapshot.artefact()
                assert artefact is not None
                await backend.download(handle, artefact, tmp_path / "out.mov")
                return snapshot
            finally:
                await backend.aclose()

        assert asyncio.run(main()).state is JobState.SUCCEEDED
        _check_alpha_matches(tmp_path / "out.mov", frames, emulator, strict=True)

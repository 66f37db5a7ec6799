"""The local backend end to end: every output format decoded back, both modes, settings, laziness."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import vidmatte
from vidmatte import BackendContext, JobState, MattingRequest, OutputFormat, OutputSpec, Source
from vidmatte.errors import ConfigurationError
from vidmatte.media import probe, read_frames_rgba, resolve_output, sample_person_box

FPS = 25
FRAMES = 25
SIZE = (320, 180)
SUFFIX = {"webm": ".webm", "mov": ".mov", "mp4": ".mp4", "matte": ".mp4", "png": "", "zip": ".zip"}


def backend(tmp_path: Path, **settings: object) -> vidmatte.MattingBackend:
    spec = vidmatte.load_plugins().backend_spec("local")
    return spec.factory(BackendContext(settings=settings, cache_dir=tmp_path / "cache"))


def matte(tmp_path: Path, clip: Path, output: OutputSpec, dest: Path, **options: object) -> vidmatte.JobSnapshot:
    local = backend(tmp_path)

    async def main() -> vidmatte.JobSnapshot:
        request = MattingRequest(Source(path=str(clip)), output, options=dict(options))
        estimate = await local.estimate(request)
        assert estimate.amount == 0
        handle = await local.submit(request, idempotency_key=uuid.uuid4().hex)
        while not (snapshot := await local.poll(handle)).state.is_terminal:  # noqa: ASYNC110 - polling is the contract
            await asyncio.sleep(0.02)
        assert snapshot.state is JobState.SUCCEEDED, snapshot.error
        artefact = snapshot.artefact()
        assert artefact is not None
        assert artefact.format is output.format
        await local.download(handle, artefact, dest)
        await local.aclose()
        return snapshot

    return asyncio.run(main())


def person_points(index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(row, column) of the astronaut's face and chest in frame ``index``."""
    left, top, right, bottom = sample_person_box(index, fps=FPS, size=SIZE, seconds=1.0)
    middle = (left + right) // 2
    return (top + (bottom - top) * 3 // 10, middle), (top + (bottom - top) * 3 // 4, middle)


def far_background(index: int) -> np.ndarray:
    """A mask of pixels well away from the photo (the moving stripes)."""
    left, _, right, _ = sample_person_box(index, fps=FPS, size=SIZE, seconds=1.0)
    far = np.ones(SIZE[::-1], bool)
    far[:, max(0, left - 12) : right + 12] = False
    return far


@pytest.mark.parametrize("fmt", ["webm", "mov", "png", "zip"])
def test_person_alpha_outputs(person_clip: Path, tmp_path: Path, fmt: str) -> None:
    dest = tmp_path / f"out{SUFFIX[fmt]}"
    snapshot = matte(tmp_path, person_clip, OutputSpec(OutputFormat(fmt)), dest)
    assert snapshot.cost is not None
    assert snapshot.cost.amount == 0
    frames = list(read_frames_rgba(dest))
    assert len(frames) == FRAMES
    for index in (0, FRAMES // 2, FRAMES - 1):
        alpha = frames[index][..., 3]
        for row, column in person_points(index):
            assert alpha[row, column] > 230, (index, row, column)
        assert alpha[far_background(index)].mean() < 10
    if fmt in ("webm", "mov"):
        info = probe(dest)
        assert (info.fps, info.frame_count) == (FPS, FRAMES)
        assert info.has_audio


def test_person_on_green_mp4(person_clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.mp4"
    matte(tmp_path, person_clip, resolve_output(OutputFormat.MP4), dest)
    info = probe(dest)
    assert (info.fps, info.frame_count, info.audio_codec) == (FPS, FRAMES, "aac")
    frame = next(iter(read_frames_rgba(dest)))
    green = frame[far_background(0)][:, :3].mean(axis=0)
    assert green[1] > 220
    assert green[0] < 40
    assert green[2] < 40


def test_person_matte_video_without_audio(person_clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "matte.mp4"
    matte(tmp_path, person_clip, OutputSpec(OutputFormat.MATTE, keep_audio=False), dest)
    info = probe(dest)
    assert (info.fps, info.frame_count, info.has_audio) == (FPS, FRAMES, False)
    luma = next(iter(read_frames_rgba(dest)))[..., 0]
    (face, chest) = person_points(0)
    assert luma[face] > 230
    assert luma[chest] > 230
    assert luma[far_background(0)].mean() < 10


def test_static_mode_finds_what_moves(static_clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "static.webm"
    matte(tmp_path, static_clip, OutputSpec(OutputFormat.WEBM), dest, mode="static")
    frames = list(read_frames_rgba(dest))
    assert len(frames) == FRAMES
    # The whole photo moves over the still stripes: all of it is foreground, the stripes are not.
    for index in (0, FRAMES // 3, FRAMES // 2):
        left, top, right, bottom = sample_person_box(index, fps=FPS, size=(480, 120), seconds=1.0)
        alpha = frames[index][..., 3]
        assert alpha[top + 6 : bottom - 6, left + 6 : right - 6].mean() > 230
        far = np.ones(alpha.shape, bool)
        far[:, max(0, left - 12) : right + 12] = False
        assert alpha[far].mean() < 15


def test_bad_settings_and_options_name_the_key(tmp_path: Path, person_clip: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"backends\.local.*mode") as excinfo:
        backend(tmp_path, mode="clever")
    assert "\n" not in str(excinfo.value)
    local = backend(tmp_path)
    request = MattingRequest(Source(path=str(person_clip)), options={"mode": "psychic"})
    with pytest.raises(ConfigurationError, match="mode"):
        asyncio.run(local.submit(request, idempotency_key="x"))


def test_registration_is_cheap_and_declares_the_default() -> None:
    spec = vidmatte.load_plugins().backend_spec("local")
    assert spec.needs_key is False
    assert spec.priority >= 100
    assert spec.capabilities.local
    assert spec.capabilities.cancel
    assert spec.capabilities.outputs == frozenset(OutputFormat)
    assert {m.value for m in spec.capabilities.input_modes} == {"file", "bytes"}
    code = (
        "import sys, vidmatte; vidmatte.load_plugins().backend_spec('local');"
        "print(sorted(m for m in ('mediapipe', 'av', 'numpy', 'cv2') if m in sys.modules))"
    )
    env = {**os.environ, "VIDMATTE_PLUGINS": "local"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_model_comes_from_the_mediapipe_wheel() -> None:
    from vidmatte_local._person import model_path

    path = Path(model_path("landscape"))
    assert path.is_file()
    assert "site-packages" in str(path) or "dist-packages" in str(path)
    assert path.parent.name == "selfie_segmentation"

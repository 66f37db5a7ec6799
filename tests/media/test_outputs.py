"""Every output format, written and decoded back: frames, fps, alpha, audio, atomic writes."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from media_helpers import FPS, FRAMES, SIZE

from vidmatte import Background, OutputFormat, OutputSpec
from vidmatte.errors import ConfigurationError, MediaError
from vidmatte.media import VideoReader, convert, open_writer, probe, read_frames_rgba, resolve_output

W, H = SIZE
SUFFIX = {"webm": ".webm", "mov": ".mov", "mp4": ".mp4", "matte": ".mp4", "png": "", "zip": ".zip"}


def box_alpha(index: int) -> np.ndarray:
    """A moving opaque box on a transparent field."""
    alpha = np.zeros((H, W), np.uint8)
    left = 40 + 2 * index
    alpha[40:140, left : left + 100] = 255
    return alpha


def write(clip: Path, dest: Path, output: OutputSpec) -> None:
    with VideoReader(clip) as reader:
        writer = open_writer(dest, output, width=W, height=H, fps=reader.fps, audio_from=clip)
        for frame in reader:
            writer.write(frame.rgb, box_alpha(frame.index))
        writer.close()


def audio_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0
        return sum(1 for _ in container.decode(audio=0))


@pytest.mark.parametrize("fmt", ["webm", "mov", "png", "zip"])
def test_alpha_formats_round_trip(clip: Path, tmp_path: Path, fmt: str) -> None:
    dest = tmp_path / f"out{SUFFIX[fmt]}"
    write(clip, dest, OutputSpec(OutputFormat(fmt)))
    frames = list(read_frames_rgba(dest))
    assert len(frames) == FRAMES
    for index in (0, FRAMES // 2, FRAMES - 1):
        alpha = frames[index][..., 3].astype(int)
        expected = box_alpha(index).astype(int)
        inside = expected == 255
        # Lossy codecs blur the edge a little: compare away from it.
        assert alpha[inside].mean() > 250
        assert alpha[~inside].mean() < 5
        assert np.abs(alpha - expected).mean() < 6
    if fmt in ("webm", "mov"):
        info = probe(dest)
        assert info.fps == FPS
        assert info.frame_count == FRAMES
        assert info.has_audio
        assert info.audio_codec == ("opus" if fmt == "webm" else "aac")
        assert audio_frames(dest) > 0
    if fmt == "zip":
        with zipfile.ZipFile(dest) as archive:
            assert archive.namelist()[0] == "frame_000000.png"
    if fmt == "png":
        assert sorted(os.listdir(dest))[:2] == ["frame_000000.png", "frame_000001.png"]


def test_mp4_is_composited_on_green_by_default(clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.mp4"
    write(clip, dest, resolve_output(OutputFormat.MP4))
    info = probe(dest)
    assert (info.fps, info.frame_count, info.has_audio, info.audio_codec) == (FPS, FRAMES, True, "aac")
    frame = next(iter(read_frames_rgba(dest)))
    outside = frame[150:175, 5:30, :3].reshape(-1, 3).mean(axis=0)
    assert outside[1] > 230
    assert outside[0] < 30
    assert outside[2] < 30
    with VideoReader(clip) as reader:
        source = next(iter(reader)).rgb.astype(int)
    inside = np.abs(frame[60:120, 60:120, :3].astype(int) - source[60:120, 60:120]).mean()
    assert inside < 8


def test_mp4_on_an_image_background(clip: Path, tmp_path: Path) -> None:
    image = tmp_path / "bg.png"
    picture = np.zeros((90, 160, 3), np.uint8)
    picture[..., 2] = 200  # blue
    import av

    av.VideoFrame.from_ndarray(picture, format="rgb24").save(str(image))
    dest = tmp_path / "out.mp4"
    write(clip, dest, resolve_output(OutputFormat.MP4, Background.parse(str(image))))
    frame = next(iter(read_frames_rgba(dest)))
    outside = frame[150:175, 5:30, :3].reshape(-1, 3).mean(axis=0)
    assert outside[2] > 180
    assert outside[0] < 30
    assert outside[1] < 30


def test_matte_video_is_the_mask(clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "matte.mp4"
    write(clip, dest, OutputSpec(OutputFormat.MATTE))
    info = probe(dest)
    assert (info.fps, info.frame_count) == (FPS, FRAMES)
    frames = list(read_frames_rgba(dest))
    luma = frames[10][..., 0].astype(int)
    inside = box_alpha(10) == 255
    assert luma[inside].mean() > 245
    assert luma[~inside].mean() < 8


def test_audio_dropped_when_not_kept(clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "quiet.webm"
    write(clip, dest, OutputSpec(OutputFormat.WEBM, keep_audio=False))
    assert not probe(dest).has_audio


def test_transparent_mp4_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="mp4") as excinfo:
        open_writer(tmp_path / "x.mp4", OutputSpec(OutputFormat.MP4), width=W, height=H, fps=25)
    assert "\n" not in str(excinfo.value)
    assert not list(tmp_path.iterdir())


def test_unwritable_destination(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="folder does not exist") as excinfo:
        open_writer(tmp_path / "nowhere" / "x.webm", OutputSpec(), width=W, height=H, fps=25)
    assert "\n" not in str(excinfo.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(MediaError, match="permission denied"):
            open_writer(folder / "x.webm", OutputSpec(), width=W, height=H, fps=25)
    finally:
        folder.chmod(0o700)


def test_output_appears_only_when_complete(clip: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.webm"
    writer = open_writer(dest, OutputSpec(), width=W, height=H, fps=25, audio_from=clip)
    with VideoReader(clip) as reader:
        for frame in list(reader)[:5]:
            writer.write(frame.rgb, box_alpha(frame.index))
    assert not dest.exists()
    writer.abort()
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["mov", "mp4", "zip"])
def test_convert_a_webm_result(clip: Path, tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "result.webm"
    write(clip, source, OutputSpec(OutputFormat.WEBM))
    dest = tmp_path / f"converted{SUFFIX[fmt]}"
    seen: list[tuple[int, int]] = []
    convert(source, dest, resolve_output(OutputFormat(fmt)), on_progress=lambda d, t: seen.append((d, t)))
    frames = list(read_frames_rgba(dest))
    assert len(frames) == FRAMES
    assert seen[-1] == (FRAMES, FRAMES)
    if fmt != "mp4":
        alpha = frames[5][..., 3].astype(int)
        inside = box_alpha(5) == 255
        assert alpha[inside].mean() > 245
        assert alpha[~inside].mean() < 8
        if fmt == "mov":
            assert probe(dest).audio_codec == "aac"
    else:
        assert probe(dest).has_audio


def test_convert_a_matte_with_its_source(clip: Path, tmp_path: Path) -> None:
    matte = tmp_path / "matte.mp4"
    write(clip, matte, OutputSpec(OutputFormat.MATTE))
    dest = tmp_path / "alpha.webm"
    convert(matte, dest, OutputSpec(OutputFormat.WEBM), matte_source=clip)
    frames = list(read_frames_rgba(dest))
    assert len(frames) == FRAMES
    inside = box_alpha(3) == 255
    assert frames[3][..., 3][inside].mean() > 240
    assert probe(dest).has_audio


@pytest.mark.parametrize(("fmt", "background"), [("mp4", None), ("webm", None), ("webm", "blue")])
def test_yuv_shortcut_matches_the_rgb_path(clip: Path, tmp_path: Path, fmt: str, background: str | None) -> None:
    # Writers given the decoded frame blend (mp4, webm on a colour) or attach alpha (webm) in
    # YUV, skipping RGB: the result must look like the RGB path's.
    output = resolve_output(OutputFormat(fmt), Background.parse(background) if background else None)
    outputs = []
    for name, use_source in (("rgb", False), ("yuv", True)):
        dest = tmp_path / f"{name}{SUFFIX[fmt]}"
        with VideoReader(clip, rgb=not use_source) as reader:
            writer = open_writer(dest, output, width=W, height=H, fps=reader.fps)
            for frame in reader:
                if use_source:
                    writer.write(None, box_alpha(frame.index), frame.source)
                else:
                    writer.write(frame.rgb, box_alpha(frame.index))
            writer.close()
        outputs.append(list(read_frames_rgba(dest)))
    assert len(outputs[0]) == len(outputs[1]) == FRAMES
    for a, b in zip(outputs[0], outputs[1], strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3

"""probe(): what a video is, and one-line errors for what is not one."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_helpers import FPS, FRAMES, SIZE, empty_video

from vidmatte.errors import MediaError
from vidmatte.media import make_sample_clip, probe


def test_probe_reads_the_sample_clip(clip: Path) -> None:
    info = probe(clip)
    assert (info.width, info.height) == SIZE
    assert info.fps == FPS
    assert info.frame_count == FRAMES
    assert info.duration == pytest.approx(FRAMES / FPS, abs=0.05)
    assert info.has_audio
    assert info.audio_codec == "aac"
    assert info.video_codec == "h264"
    assert info.rotation == 0
    assert info.size_bytes == clip.stat().st_size


def test_webm_duration_comes_from_the_container(tmp_path: Path) -> None:
    # WebM video streams carry no duration of their own; the frame count is derived from it.
    path = make_sample_clip(tmp_path / "clip.webm", seconds=0.8, fps=25, size=(160, 90))
    info = probe(path)
    assert info.duration == pytest.approx(0.8, abs=0.05)
    assert info.frame_count == 20
    assert info.audio_codec == "opus"


def test_silent_clip_has_no_audio(silent_clip: Path) -> None:
    info = probe(silent_clip)
    assert not info.has_audio
    assert info.audio_codec is None


def _one_line(excinfo: pytest.ExceptionInfo[MediaError], path: Path) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are notes, not a video\n" * 50)
    with pytest.raises(MediaError) as excinfo:
        probe(path)
    assert "not a readable video" in _one_line(excinfo, path)


def test_truncated_video(clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    with pytest.raises(MediaError) as excinfo:
        probe(path)
    assert "truncated" in _one_line(excinfo, path)


def test_zero_frames(tmp_path: Path) -> None:
    path = empty_video(tmp_path / "empty.mkv")
    with pytest.raises(MediaError) as excinfo:
        probe(path)
    assert "no video frames" in _one_line(excinfo, path)


@pytest.mark.parametrize(("name", "problem"), [("missing.mp4", "no such file"), ("empty.mp4", "is empty")])
def test_missing_and_empty_files(tmp_path: Path, name: str, problem: str) -> None:
    path = tmp_path / name
    if name == "empty.mp4":
        path.touch()
    with pytest.raises(MediaError) as excinfo:
        probe(path)
    assert problem in _one_line(excinfo, path)


def test_audio_only_file_has_no_video(tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(MediaError) as excinfo:
        probe(path)
    assert "no video stream" in _one_line(excinfo, path)


def test_rotated_video_is_reported_and_decoded_upright(tmp_path: Path) -> None:
    import av
    import numpy as np

    from vidmatte.media import VideoReader

    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)
        for index in range(3):
            picture = np.zeros((32, 64, 3), np.uint8)
            picture[:, :16] = 255  # a bright band on the left of the stored picture
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe(path)
    assert info.rotation == 90
    assert (info.width, info.height) == (32, 64)
    with VideoReader(path) as reader:
        first = next(iter(reader))
    assert first.rgb.shape == (64, 32, 3)
    # Turned 90 degrees counter-clockwise: the left band is now at the bottom.
    assert first.rgb[52:, :, 0].mean() > 200
    assert first.rgb[:40, :, 0].mean() < 30

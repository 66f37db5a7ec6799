"""Fixtures for the local backend tests: the sample clip, small and short."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidmatte.media import make_sample_clip

SIZE = (320, 180)
FPS = 25
SECONDS = 1.0
STATIC_SIZE = (480, 120)


@pytest.fixture(scope="session")
def person_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The astronaut over moving stripes, with a tone."""
    return make_sample_clip(tmp_path_factory.mktemp("person") / "sample.mp4", seconds=SECONDS, fps=FPS, size=SIZE)


@pytest.fixture(scope="session")
def static_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The astronaut over still stripes (a fixed camera), in a wide frame.

    Wide, so every background pixel is uncovered most of the time: the median background
    is then the stripes (in a 16:9 frame the photo covers the middle for most of the clip).
    """
    path = tmp_path_factory.mktemp("static") / "static.mp4"
    return make_sample_clip(path, seconds=SECONDS, fps=FPS, size=STATIC_SIZE, static_background=True)

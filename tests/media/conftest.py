"""Media test fixtures: small clips made here, once per session (nothing downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_helpers import FPS, SECONDS, SIZE

from vidmatte.media import make_sample_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample clip (astronaut over moving stripes, AAC tone), 320x180, 30 frames."""
    return make_sample_clip(tmp_path_factory.mktemp("clip") / "sample.mp4", seconds=SECONDS, fps=FPS, size=SIZE)


@pytest.fixture(scope="session")
def silent_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample clip without audio."""
    path = tmp_path_factory.mktemp("silent") / "silent.mp4"
    return make_sample_clip(path, seconds=SECONDS, fps=FPS, size=SIZE, audio=False)

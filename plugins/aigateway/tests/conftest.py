"""Shared fixtures: a small test clip (helpers for decoding alpha are in ``aigateway_media``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vidmatte_aigateway.record import make_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 160x120, 10 fps H.264 clip: a red square moving over a flat blue background."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    make_clip(path, seconds=2.0, fps=10, width=160, height=120)
    return path

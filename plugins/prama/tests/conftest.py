"""Shared fixtures of the prama plugin's tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray
from vidmatte_prama.emulator import Emulator
from vidmatte_prama.testing import running_emulator


@pytest.fixture
def square_frame() -> NDArray[np.uint8]:
    """48 x 64: a bright square (rows 12-35, columns 20-43) on a dark background."""
    frame = np.full((48, 64, 3), 20, dtype=np.uint8)
    frame[12:36, 20:44] = 230
    return frame


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The emulator on an ephemeral port, synthetic masks, no faults."""
    with running_emulator(masks="synthetic") as emulator:
        yield emulator

"""Frame economy (which frames a paid frame backend is asked about) and the pipeline's options.

``frame_step=N`` sends every Nth frame (and the last); ``change_threshold=t``
sends a frame only when it differs from the last frame sent by more than ``t``
(mean absolute difference of the small frames, 0..1).  Masks of frames not sent
are interpolated between the masks around them (or held, past a bound).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from vidmatte.errors import ConfigurationError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["FramePlan"]


@attrs.frozen
class FramePlan:
    """Which frames to send, from a request's options."""

    frame_step: int = 1
    change_threshold: float | None = None
    smoothing: bool = True
    """Temporal smoothing of masks (option ``smoothing``)."""
    refine: bool = True
    """Edge refinement of low-resolution masks (option ``refine``)."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FramePlan:
        """Read ``frame_step`` and ``change_threshold``; a bad value is a one-line ConfigurationError."""
        step = options.get("frame_step", 1)
        threshold = options.get("change_threshold")
        try:
            step = int(step)
        except (TypeError, ValueError):
            raise ConfigurationError(f"option frame_step must be a whole number >= 1, got {step!r}") from None
        if step < 1:
            raise ConfigurationError(f"option frame_step must be a whole number >= 1, got {step!r}")
        if threshold is not None:
            try:
                threshold = float(threshold)
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"option change_threshold must be a number in 0..1, got {threshold!r}"
                ) from None
            if not 0 <= threshold <= 1:
                raise ConfigurationError(f"option change_threshold must be a number in 0..1, got {threshold!r}")
        flags = {}
        for name in ("smoothing", "refine"):
            value = options.get(name, True)
            if not isinstance(value, bool):
                raise ConfigurationError(f"option {name} must be true or false, got {value!r}")
            flags[name] = value
        return cls(step, threshold, **flags)

    def planned_calls(self, frame_count: int) -> int:
        """Frames that will be sent at most (the change threshold can only lower it)."""
        if frame_count <= 0:
            return 0
        calls = math.ceil(frame_count / self.frame_step)
        if (frame_count - 1) % self.frame_step:
            calls += 1  # the last frame is always sent
        return calls

    def chooser(self, frame_count: int) -> FrameChooser:
        """A stateful decider for one pass over a clip."""
        return FrameChooser(self, frame_count)


class FrameChooser:
    """Decides, frame by frame in order, whether a frame is sent."""

    def __init__(self, plan: FramePlan, frame_count: int) -> None:
        self.plan = plan
        self.frame_count = frame_count
        self._last_sent: NDArray[np.uint8] | None = None

    def send(self, index: int, small: NDArray[np.uint8] | None, *, last: bool = False) -> bool:
        """True when frame ``index`` goes to the backend."""
        import numpy as np

        step = self.plan.frame_step
        on_step = index % step == 0 or last
        if not on_step:
            return False
        if self.plan.change_threshold is None or small is None or self._last_sent is None:
            self._last_sent = small
            return True
        if self._last_sent.shape != small.shape:
            self._last_sent = small
            return True
        diff = float(np.mean(np.abs(small.astype(np.int16) - self._last_sent.astype(np.int16)))) / 255
        if diff > self.plan.change_threshold:
            self._last_sent = small
            return True
        return False

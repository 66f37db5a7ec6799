"""Where to place polls: a model of how long jobs take, learned per backend.

A job of ``d`` seconds of video is expected to take ``a + b * d`` seconds from
submit to completion (queue plus processing).  ``a`` and ``b`` are fitted by
least squares over finished jobs, and the spread around the fit is kept as
ratios (actual / predicted).  Polls go at quantiles of that spread, so a job
is looked at where completions are likely instead of on a fixed beat; past
the last quantile the gaps grow geometrically.
"""

from __future__ import annotations

import math
from collections import deque

import attrs

__all__ = ["PollPolicy", "SpeedModel"]


@attrs.frozen
class PollPolicy:
    """Tunables of poll placement (defaults suit minute-scale video jobs)."""

    prior_queue: float = 5.0
    """Seconds of queue assumed before anything is learned."""
    prior_speed: float = 1.0
    """Seconds of processing per second of video assumed before anything is learned."""
    prior_spread: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
    """Ratios actual/predicted assumed before enough jobs finished."""
    quantiles: tuple[float, ...] = (0.1, 0.35, 0.6, 0.8, 0.95)
    """Where in the learned spread polls are placed when the budget allows all of them."""
    growth: float = 1.3
    """After the last planned point, each gap is this factor of the time elapsed so far, minus one."""
    max_gap: float = 60.0
    """Longest wait between two polls of one job."""
    unknown_first: float = 2.0
    """First poll of a job whose video duration is unknown (then x1.5 like the gateway SDK)."""
    min_samples: int = 8
    """Finished jobs needed before the learned spread replaces the prior."""
    window: int = 256
    """Finished jobs remembered per backend."""


class SpeedModel:
    """Completion times learned from finished jobs of one backend (bounded memory)."""

    def __init__(self, policy: PollPolicy) -> None:
        self._policy = policy
        self._samples: deque[tuple[float, float]] = deque(maxlen=policy.window)
        self._fit: tuple[float, float] | None = None
        self._ratios: list[float] = []

    def record(self, duration: float, seconds: float) -> None:
        """A job of ``duration`` seconds of video took ``seconds`` from submit to done."""
        if duration <= 0 or seconds <= 0 or not math.isfinite(seconds):
            return
        self._samples.append((duration, seconds))
        self._fit = None

    def _refit(self) -> None:
        samples = list(self._samples)
        policy = self._policy
        if len(samples) < policy.min_samples:
            self._fit = (policy.prior_queue, policy.prior_speed)
            self._ratios = sorted(policy.prior_spread)
            return
        n = len(samples)
        mean_d = sum(d for d, _ in samples) / n
        mean_t = sum(t for _, t in samples) / n
        var_d = sum((d - mean_d) ** 2 for d, _ in samples)
        slope = sum((d - mean_d) * (t - mean_t) for d, t in samples) / var_d if var_d > 1e-9 else mean_t / mean_d
        slope = max(slope, 0.0)
        intercept = max(0.0, mean_t - slope * mean_d)
        self._fit = (intercept, slope)
        self._ratios = sorted(t / max(1e-6, intercept + slope * d) for d, t in samples)

    def predict(self, duration: float) -> float:
        """Expected seconds from submit to completion."""
        if self._fit is None:
            self._refit()
        assert self._fit is not None
        queue, speed = self._fit
        return queue + speed * duration

    def plan(self, duration: float, points: int) -> list[float]:
        """Up to ``points`` offsets from submit (seconds, increasing) at learned quantiles."""
        if self._fit is None:
            self._refit()
        predicted = self.predict(duration)
        quantiles = self._policy.quantiles
        if points < len(quantiles):
            # Fewer points than planned: spread them evenly over the distribution.
            quantiles = tuple((i + 0.5) / points for i in range(max(1, points)))
        ratios = self._ratios
        offsets = [predicted * ratios[round(q * (len(ratios) - 1))] for q in quantiles]
        return sorted(set(offsets))

    @property
    def learned(self) -> int:
        """Finished jobs the model has seen (up to the window)."""
        return len(self._samples)

"""Where to place polls: a model of how long jobs take, learned per backend.

A job of ``d`` seconds of video is expected to take ``a + b * d`` seconds from
submit to completion (queue plus processing).  ``a`` and ``b`` are fitted by
least squares over finished jobs, and the spread around the fit is kept as
ratios (actual / predicted).

A finished job tells only that it completed somewhere between the last poll
that saw it running and the poll that saw it done (interval-censored data).
Taking the midpoint, or a uniform draw, of a wide window teaches the model
the polling pattern instead of the jobs (under load, when the first look
comes late, the fit collapsed to "everything takes 110 s").  So each refit
imputes every window with a draw from the current model restricted to that
window (stochastic EM): wide windows carry no information and leave the model
as it is, narrow ones pull it to the truth.

Polls go on an evenly spaced grid across the job's likely window (the
learned spread), anchored at its late end, ``target_gap`` apart or wider when
the request budget cannot pay for that many: the detection delay of a job
that finishes inside the window is at most one gap, and a job costs about
``1 + window / (2 * gap)`` polls.  Past the window the gaps grow geometrically.
"""

from __future__ import annotations

import bisect
import math
import random
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
    """Where in the learned spread polls are placed when ``target_gap`` is ``None``."""
    target_gap: float | None = 25.0
    """Most seconds between planned polls inside a job's likely window (the budget may widen
    it).  ``None`` places polls at ``quantiles`` of the spread instead."""
    relative_gap: float = 0.4
    """The gap as a share of a typical job's expected time (a 60 s video's), when smaller
    than ``target_gap``: fast backends are looked at as finely, relative to their speed."""
    spread: tuple[float, float] = (0.02, 0.95)
    """The likely window: these quantiles of the learned spread (the tail beyond is overdue)."""
    max_points: int = 12
    """Most planned polls per job, however much budget is spare."""
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
        self._samples: deque[tuple[float, float, float]] = deque(maxlen=policy.window)
        self._fit: tuple[float, float] | None = None
        self._ratios: list[float] = []
        self._fresh = 0
        """Samples recorded since the last refit."""
        # Imputation draws: seeded, so a run is reproducible.
        self._rng = random.Random(0)

    def record(self, duration: float, seconds: float) -> None:
        """A job of ``duration`` seconds of video took ``seconds`` from submit to done."""
        self.record_window(duration, seconds, seconds)

    def record_window(self, duration: float, earliest: float, latest: float) -> None:
        """A job of ``duration`` seconds of video completed between ``earliest`` and ``latest``
        seconds after submit (the last look that saw it running, the first that saw it done)."""
        earliest = max(0.0, earliest)
        if duration <= 0 or latest <= 0 or not math.isfinite(latest) or latest < earliest:
            return
        self._samples.append((duration, earliest, latest))
        self._fresh += 1

    def _stale(self) -> bool:
        # Refit after a few new samples, not after each: a refit walks the whole window.
        return self._fit is None or self._fresh >= max(1, len(self._samples) // 16)

    def _impute(self, duration: float, earliest: float, latest: float) -> float:
        """A completion time inside the window, drawn from the current model."""
        if latest - earliest < 1e-9:
            return latest
        assert self._fit is not None
        predicted = max(1e-6, self._fit[0] + self._fit[1] * duration)
        ratios = self._ratios
        low = bisect.bisect_left(ratios, earliest / predicted)
        high = bisect.bisect_right(ratios, latest / predicted)
        if high > low:
            return predicted * ratios[self._rng.randrange(low, high)]
        return self._rng.uniform(earliest, latest)

    def _refit(self) -> None:
        policy = self._policy
        self._fresh = 0
        samples = list(self._samples)
        prior = (policy.prior_queue, policy.prior_speed)
        if self._fit is None or len(samples) < 3:
            self._fit, self._ratios = prior, sorted(policy.prior_spread)
        if len(samples) < 3:
            return
        enough = len(samples) >= policy.min_samples
        for _ in range(2):
            points = [(d, self._impute(d, lo, hi)) for d, lo, hi in samples]
            fit = _least_squares(points) if enough else None
            if fit is None:
                # Too few jobs, or durations too alike to tell queue from speed: scale the
                # prior by what the jobs say (a faster tier shows from the first completions).
                scales = sorted(t / (prior[0] + prior[1] * d) for d, t in points)
                scale = scales[len(scales) // 2]
                fit = (prior[0] * scale, prior[1] * scale)
            self._fit = fit
            if enough:
                self._ratios = sorted(t / max(1e-6, fit[0] + fit[1] * d) for d, t in points)

    def predict(self, duration: float) -> float:
        """Expected seconds from submit to completion."""
        if self._stale():
            self._refit()
        assert self._fit is not None
        queue, speed = self._fit
        return queue + speed * duration

    def _ratio(self, q: float) -> float:
        ratios = self._ratios
        return ratios[round(q * (len(ratios) - 1))]

    def plan(self, duration: float, points: int) -> list[float]:
        """Up to ``points`` offsets from submit (seconds, increasing) where polls should go."""
        predicted = self.predict(duration)
        points = max(1, points)
        gap = self._policy.target_gap
        if gap is None:
            quantiles = self._policy.quantiles
            if points < len(quantiles):
                # Fewer points than planned: spread them evenly over the distribution.
                quantiles = tuple((i + 0.5) / points for i in range(points))
            return sorted({predicted * self._ratio(q) for q in quantiles})
        low_q, high_q = self._policy.spread
        start, end = predicted * self._ratio(low_q), predicted * self._ratio(high_q)
        width = max(0.0, end - start)
        points = min(points, self._policy.max_points)
        gap = min(gap, self._policy.relative_gap * self.predict(60.0))
        gap = max(gap, width / points, 1e-3)
        count = max(1, math.ceil(width / gap - 1e-9))
        return sorted(end - gap * i for i in range(count))

    def window(self, duration: float) -> tuple[float, float]:
        """The likely completion window (seconds from submit) of a job of ``duration`` seconds."""
        predicted = self.predict(duration)
        low_q, high_q = self._policy.spread
        return predicted * self._ratio(low_q), predicted * self._ratio(high_q)

    @property
    def learned(self) -> int:
        """Finished jobs the model has seen (up to the window)."""
        return len(self._samples)


def _least_squares(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(queue, speed) fitted to (duration, seconds), or ``None`` when the slope is not
    pinned down (its standard error over a quarter of it: extrapolation would be a guess)."""
    n = len(points)
    mean_d = sum(d for d, _ in points) / n
    mean_t = sum(t for _, t in points) / n
    var_d = sum((d - mean_d) ** 2 for d, _ in points)
    if n < 3 or var_d < 1e-9:
        return None
    slope = sum((d - mean_d) * (t - mean_t) for d, t in points) / var_d
    intercept = mean_t - slope * mean_d
    residual = sum((t - intercept - slope * d) ** 2 for d, t in points) / (n - 2)
    if slope <= 0 or math.sqrt(residual / var_d) > 0.25 * slope:
        return None
    return max(0.0, intercept), slope

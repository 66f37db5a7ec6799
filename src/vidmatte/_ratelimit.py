"""A client-side request budget per backend: a token bucket fed by the provider's headers."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Mapping

from vidmatte._clock import Clock, LoopClock

__all__ = ["RateLimiter", "prepaid"]

# A token the scheduler already took for the request a backend is about to send: the
# backend's own ``acquire()`` consumes it instead of taking a second one.
_prepaid: contextvars.ContextVar[list[RateLimiter] | None] = contextvars.ContextVar("vidmatte_prepaid", default=None)


@contextlib.contextmanager
def prepaid(limiter: RateLimiter) -> Iterator[None]:
    """Within this block, the next ``limiter.acquire()`` is free (its token was taken already)."""
    token = _prepaid.set([limiter])
    try:
        yield
    finally:
        _prepaid.reset(token)


# Spend at most this share of a provider's advertised rate: the provider's window and
# ours never line up exactly, and a 429 costs far more than the 5% left unused.
_SAFETY = 0.95


class RateLimiter:
    """A token bucket: ``rate`` requests per second with ``burst`` tokens of headroom.

    ``rate=None`` means unlimited.  :meth:`observe_headers` reads the common
    ``x-ratelimit-*-requests`` headers and :meth:`pause` honours ``Retry-After``.

    :meth:`acquire` reserves: a caller that finds no token takes one on credit
    (the balance goes negative) and sleeps once, exactly until its turn.  A
    thousand submits waiting on one budget then wake one by one, in order,
    instead of all waking at every refill to find it taken (which cost more
    CPU than the requests themselves).
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        burst: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or LoopClock()
        self.rate: float | None = None
        self.burst = 1.0
        self._tokens = 0.0
        self._updated = self._clock.monotonic()
        self._paused_until = 0.0
        self.set_limit(requests_per_minute, burst=burst)
        self._tokens = self.burst

    def set_limit(self, requests_per_minute: float | None, *, burst: float | None = None) -> None:
        """Change the rate (requests a minute, ``None`` for unlimited)."""
        if requests_per_minute is None or requests_per_minute <= 0:
            self.rate = None
            return
        self.rate = requests_per_minute * _SAFETY / 60.0
        # A small burst: providers' own bursts are not promised to us.
        self.burst = max(1.0, burst if burst is not None else min(5.0, self.rate * 2))
        self._tokens = min(self._tokens, self.burst)

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def delay(self) -> float:
        """Seconds until a token is free (0 when one is free now); takes nothing."""
        now = self._clock.monotonic()
        self._refill(now)
        wait = max(0.0, self._paused_until - now)
        # The epsilon absorbs float drift in the refill arithmetic, which would otherwise
        # ask callers to wait for a billionth of a token over and over.
        if self.rate is not None and self._tokens < 1.0 - 1e-9:
            wait = max(wait, (1.0 - self._tokens) / self.rate)
        return wait

    def try_acquire(self) -> float:
        """Take a token and return 0, or take nothing and return the seconds to wait."""
        wait = self.delay()
        if wait > 0:
            return wait
        if self.rate is not None:
            self._tokens = max(0.0, self._tokens - 1.0)
        return 0.0

    def reserve(self) -> float:
        """Take a token now or on credit; return the seconds until it may be spent."""
        now = self._clock.monotonic()
        self._refill(now)
        wait = max(0.0, self._paused_until - now)
        if self.rate is not None:
            self._tokens -= 1.0
            if self._tokens < -1e-9:
                wait = max(wait, -self._tokens / self.rate)
        return wait

    async def acquire(self) -> None:
        """Wait for a token and take it (or use the one prepaid by the scheduler)."""
        held = _prepaid.get()
        if held and held[0] is self:
            held.clear()
            return
        wait = self.reserve()
        while wait > 0:
            await self._clock.sleep(wait)
            # A pause (a 429's Retry-After) may have come while this caller slept.
            wait = max(0.0, self._paused_until - self._clock.monotonic())

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's ``Retry-After``)."""
        now = self._clock.monotonic()
        self._refill(now)
        self._paused_until = max(self._paused_until, now + seconds)
        if self.rate is not None:
            # The first token comes back as the pause ends, then one per 1/rate: no burst then.
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate)

    def observe_headers(self, headers: Mapping[str, str], *, window: float = 60.0) -> None:
        """Follow a provider's ``x-ratelimit-{limit,remaining,reset}-requests`` headers.

        ``limit`` is per ``window`` seconds (a minute for AIgateway).  When the
        provider says fewer requests remain than we think, we believe it.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        limit = _number(lowered.get("x-ratelimit-limit-requests"))
        remaining = _number(lowered.get("x-ratelimit-remaining-requests"))
        reset = _number(lowered.get("x-ratelimit-reset-requests"))
        if limit is not None and limit > 0:
            wanted = limit * 60.0 / window
            current = None if self.rate is None else self.rate * 60.0 / _SAFETY
            if current is None or not math.isclose(current, wanted, rel_tol=1e-6):
                self.set_limit(wanted)
        if remaining is not None and remaining < 1 and reset is not None:
            self.pause(reset)
        elif remaining is not None and self.rate is not None:
            self._refill(self._clock.monotonic())
            self._tokens = min(self._tokens, remaining)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.rstrip("s"))
    except ValueError:
        return None

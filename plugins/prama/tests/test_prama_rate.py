"""Holding the configured rate and concurrency on the virtual clock, and what a 429 does to the rest."""

from __future__ import annotations

import asyncio
import io
import logging

import httpx
import numpy as np
import pytest
from PIL import Image
from vidmatte_prama.plugin import create_matter
from vidmatte_prama.testing import FAKE_KEY, context

from vidmatte.errors import AuthenticationError
from vidmatte.testing import run_virtual


def _png_mask() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((48, 64), 255, np.uint8), "L").save(out, "PNG")
    return out.getvalue()


class FakePrama:
    """A provider on the virtual clock: latency, a per-second token bucket, 429 beyond it."""

    def __init__(self, *, latency: float, rate: float, retry_after: str = "1") -> None:
        self.latency, self.rate, self.retry_after = latency, rate, retry_after
        self.tokens, self.updated = rate, 0.0
        self.sent: list[float] = []
        self.statuses: list[int] = []
        self.in_flight = self.max_in_flight = 0
        self.png = _png_mask()
        self.transport = httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        now = asyncio.get_running_loop().time()
        self.sent.append(now)
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.statuses.append(429)
            return httpx.Response(429, headers={"retry-after": self.retry_after}, json={"error": {"code": "rate"}})
        self.tokens -= 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        self.statuses.append(200)
        return httpx.Response(200, headers={"content-type": "image/png"}, content=self.png)


def _drive(provider: FakePrama, frames: int, **settings: object) -> float:
    frame = np.full((48, 64, 3), 90, np.uint8)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        matter = create_matter(context(transport=provider.transport, settings=settings))
        start = loop.time()
        try:
            # One call per frame, all at once: the matter itself must pace them.
            masks = await asyncio.gather(*(matter.matte([frame]) for _ in range(frames)))
            assert all(m[0].shape == (48, 64) for m in masks)
            assert matter.masks_returned == frames
            return loop.time() - start
        finally:
            await matter.aclose()

    return run_virtual(main())


def test_holds_the_rate_without_429s() -> None:
    provider = FakePrama(latency=0.15, rate=20)
    took = _drive(provider, 200, requests_per_second=20, concurrency=8)
    assert provider.statuses.count(429) == 0
    achieved = 200 / took
    assert achieved >= 0.9 * 20, achieved
    # Never more than the provider's second's worth in any one-second window.
    times = np.array(provider.sent)
    for t in times:
        assert np.count_nonzero((times >= t) & (times < t + 1.0)) <= 20


def test_concurrency_is_bounded() -> None:
    provider = FakePrama(latency=2.0, rate=1000)
    _drive(provider, 40, requests_per_second=None, concurrency=4)
    assert provider.max_in_flight == 4


def test_a_429_pauses_everyone_for_retry_after() -> None:
    # Our budget is wrong (30/s against a provider allowing 10/s): 429s come, and each
    # pauses every sender for Retry-After instead of a storm of retries.
    provider = FakePrama(latency=0.05, rate=10, retry_after="2")
    _drive(provider, 60, requests_per_second=30, concurrency=8)
    rejected = provider.statuses.count(429)
    assert 0 < rejected <= 12, rejected
    times = provider.sent
    for index, status in enumerate(provider.statuses):
        if status == 429:
            after = [t for t in times if times[index] < t < times[index] + 1.99]
            # Only requests already in flight at the 429 may land inside the pause.
            assert len(after) <= 8


def test_key_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    def echo_key(request: httpx.Request) -> httpx.Response:
        # A provider that quotes the key back in its error message.
        key = request.headers["x-api-key"]
        return httpx.Response(401, json={"error": {"code": "invalid_api_key", "message": f"key {key} is invalid"}})

    async def main() -> AuthenticationError:
        matter = create_matter(context(transport=httpx.MockTransport(echo_key)))
        try:
            await matter.matte([np.zeros((8, 8, 3), np.uint8)])
        except AuthenticationError as exc:
            return exc
        finally:
            await matter.aclose()
        raise AssertionError("no error")

    with caplog.at_level(logging.DEBUG):
        error = run_virtual(main())
    texts = [str(error), repr(error), error.message, *(r.getMessage() for r in caplog.records)]
    assert all(FAKE_KEY not in text for text in texts)
    assert "invalid_api_key" in str(error)

"""The Prama frame matter: one ``POST /v2`` per frame, mask only, under a request budget."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import httpx
import numpy as np
from numpy.typing import NDArray

from vidmatte import Clock, Cost, CostKind, FrameLimits, LoopClock, RateLimiter
from vidmatte.errors import ConfigurationError, ProtocolError, RequestRejectedError, VidmatteError
from vidmatte.http import RetryPolicy, create_client, read_json, send
from vidmatte_prama._codec import MaskDecodeError, decode_mask, encode_frame, scale_mask
from vidmatte_prama._settings import API_KEY_ENV, PramaSettings

__all__ = ["BACKEND_NAME", "PramaMatter"]

BACKEND_NAME = "prama"

T = TypeVar("T")

# Frames larger than this many pixels are encoded on a worker thread: Pillow releases
# the GIL while resizing and encoding, and the event loop keeps feeding other requests.
_THREAD_PIXELS = 640 * 640


class PramaMatter:
    """A :class:`vidmatte.FrameMatter` over Prama's synchronous image API.

    Each frame is resized to ``max_side``, JPEG-encoded and sent as one
    ``POST /v2`` asking for the mask alone (``channels=alpha``); the PNG mask
    that comes back is scaled to the frame's size.  At most ``concurrency``
    requests are in flight, and a token bucket (:class:`vidmatte.RateLimiter`)
    spends the ``requests_per_second`` budget, retries included, so the rate is
    held without 429 storms.  429 (``Retry-After``), 5xx and dropped
    connections are retried with backoff; 401 and 413 are raised at once.
    """

    def __init__(
        self,
        settings: PramaSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not settings.api_key:
            raise ConfigurationError(f"the prama backend needs an API key: set {API_KEY_ENV}")
        self._settings = settings.check()
        self._key = settings.api_key
        self._clock = _MinimumSleep(clock or LoopClock())
        rate = settings.requests_per_second
        # The bucket spends 95% of the rate; its burst is kept just small enough that no
        # one-second window ever holds more than the configured rate, whatever window the
        # provider counts in (undocumented for Prama), yet a waiter woken a little late
        # (a busy event loop) catches up instead of losing that time for good.
        burst = 1.0 + 0.045 * rate if rate is not None else None
        self._limiter = limiter or RateLimiter(
            rate * 60.0 if rate is not None else None, burst=burst, clock=self._clock
        )
        self._policy = RetryPolicy(attempts=settings.attempts)
        self._rng = rng
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._client = create_client(
            base_url=settings.url,
            headers={"x-api-key": settings.api_key, "accept": "image/png, application/json"},
            transport=transport,
            timeout=settings.timeout,
            max_connections=settings.concurrency,
        )
        self.masks_returned = 0
        """Requests that returned a mask: what Prama charges for."""
        self.retries = 0
        """Requests retried after a 429, a 5xx or a dropped connection."""

    def __repr__(self) -> str:
        return f"PramaMatter(base_url={self._settings.url!r}, concurrency={self._settings.concurrency})"

    @property
    def name(self) -> str:
        """``"prama"``."""
        return BACKEND_NAME

    @property
    def settings(self) -> PramaSettings:
        """The settings this matter runs with."""
        return self._settings

    @property
    def limits(self) -> FrameLimits:
        """One frame a call, ``concurrency`` calls in flight, ``requests_per_second``, ``max_side``."""
        return FrameLimits(
            batch_size=1,
            max_concurrency=self._settings.concurrency,
            requests_per_second=self._settings.requests_per_second,
            max_side=self._settings.max_side,
        )

    def cost_per_call(self) -> Cost:
        """The configured price of one image (an assumption unless configured)."""
        price = self._settings.price_per_image
        return Cost(price, "USD", CostKind.ESTIMATED, f"USD {price} per image")

    async def health(self) -> dict[str, Any]:
        """``GET /v2/health``: the service's own answer (raises on errors)."""
        response = await send(
            self._client,
            lambda: self._client.build_request("GET", "/v2/health"),
            backend=BACKEND_NAME,
            policy=self._policy,
            clock=self._clock,
            secrets=(self._key,),
            rng=self._rng,
        )
        body = read_json(response, backend=BACKEND_NAME)
        return body if isinstance(body, dict) else {"status": body}

    async def matte(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        """One mask per frame (``uint8`` H x W, the frame's own size), in order."""
        return await _gather_first_error([self.matte_frame(frame) for frame in frames])

    async def matte_frame(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The mask of one RGB frame, scaled back to the frame's size."""
        height, width = frame.shape[:2]
        async with self._semaphore:
            if height * width > _THREAD_PIXELS:
                payload, _ = await asyncio.to_thread(self._encode, frame)
            else:
                payload, _ = self._encode(frame)
            try:
                response = await send(
                    self._client,
                    lambda: self._build(payload),
                    backend=BACKEND_NAME,
                    policy=self._policy,
                    limiter=self._limiter,
                    clock=self._clock,
                    secrets=(self._key,),
                    rng=self._rng,
                    on_retry=self._count_retry,
                )
            except RequestRejectedError as exc:
                if exc.status_code != 413:
                    raise
                raise RequestRejectedError(
                    f"{exc.message}; uploads are {len(payload)} bytes at max_side={self._settings.max_side}: "
                    "lower backends.prama.max_side",
                    backend=BACKEND_NAME,
                    status_code=413,
                    request_id=exc.request_id,
                ) from None
        try:
            mask = decode_mask(response.content, response.headers.get("content-type", ""))
        except MaskDecodeError as exc:
            request_id = response.headers.get("x-request-id")
            raise ProtocolError(
                str(exc), backend=BACKEND_NAME, status_code=response.status_code, request_id=request_id
            ) from None
        self.masks_returned += 1
        return scale_mask(mask, width, height)

    def _encode(self, frame: NDArray[np.uint8]) -> tuple[bytes, tuple[int, int]]:
        return encode_frame(frame, max_side=self._settings.max_side, quality=self._settings.jpeg_quality)

    def _count_retry(self, error: VidmatteError, wait: float) -> None:
        self.retries += 1

    def _build(self, payload: bytes) -> httpx.Request:
        options = {"channels": "alpha", "format": "png"}
        if self._settings.size is not None:
            options["size"] = self._settings.size
        if self._settings.request_format == "json":
            body = {self._settings.json_field: base64.b64encode(payload).decode("ascii"), **options}
            return self._client.build_request("POST", "/v2", json=body)
        return self._client.build_request(
            "POST", "/v2", data=options, files={"image_file": ("frame.jpg", payload, "image/jpeg")}
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


class _MinimumSleep:
    """A clock whose sleeps last at least a microsecond.

    The token bucket can ask for a wait of 1e-17 s (a float rounding short of a
    whole token); added to the loop time that is no time at all, so on a virtual
    loop the waiters would spin forever.  A microsecond is nothing in real time.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def wall(self) -> float:
        return self._clock.wall()

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(max(seconds, 1e-6))


async def _gather_first_error(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` concurrently; on the first failure cancel the rest and raise that error alone."""
    if len(calls) == 1:
        return [await calls[0]]
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks.extend(group.create_task(call) for call in calls)
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]

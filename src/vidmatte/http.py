"""HTTP for plugins: one client factory, bounded retries, safe JSON, streamed downloads.

Plugins build their client with :func:`create_client` (the core's chosen
transport, or the one injected through :class:`~vidmatte.contract.BackendContext`),
send through :func:`send` (retries with backoff, jitter and ``Retry-After``;
the limiter fed from rate-limit headers), read bodies with :func:`read_json`
(malformed JSON or an HTML page becomes a :class:`~vidmatte.errors.ProtocolError`)
and save artefacts with :func:`stream_to_file`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx

from vidmatte._clock import Clock, LoopClock
from vidmatte._ratelimit import RateLimiter
from vidmatte.errors import (
    ConfigurationError,
    MediaError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    VidmatteError,
    raise_for_response,
    redact,
)

__all__ = [
    "RetryPolicy",
    "check_base_url",
    "create_client",
    "default_transport",
    "map_transport_errors",
    "read_json",
    "send",
    "stream_to_file",
]


@attrs.frozen
class RetryPolicy:
    """Bounded exponential backoff with full jitter; ``Retry-After`` wins when longer."""

    attempts: int = 5
    """Tries in all, the first included."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    """Longest ``Retry-After`` honoured inside one call; longer ones are raised to the caller."""

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        backoff = rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        return max(backoff, retry_after or 0.0)


def default_transport() -> httpx.AsyncBaseTransport:
    """The transport used when none is injected.

    Chosen by measurement (``benchmarks/``): httpx's default async pool slows
    down under concurrency, so the aiohttp-backed transport is used when installed.
    """
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:  # pragma: no cover - the dependency is declared
        return httpx.AsyncHTTPTransport()
    return AiohttpTransport()


def check_base_url(url: str, *, setting: str) -> str:
    """Refuse a non-HTTPS base URL unless it points at loopback (emulators, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}:
        return url.rstrip("/")
    raise ConfigurationError(f"{setting} must be an https:// URL (plain http only on loopback), got {url!r}")


def create_client(
    *,
    base_url: str = "",
    headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 60.0,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on ``transport`` (injected) or the default transport."""
    if transport is None:
        transport = default_transport()
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=True,
    )


@contextlib.contextmanager
def map_transport_errors(
    *, backend: str, job_id: str | None = None, secrets: tuple[str | None, ...] = ()
) -> Iterator[None]:
    """Turn httpx's network failures into :class:`TransientError` (secrets redacted)."""
    try:
        yield
    except httpx.TransportError as exc:
        message = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, *secrets)
        raise TransientError(f"network error: {message}", backend=backend, job_id=job_id) from None


async def send(
    client: httpx.AsyncClient,
    build: Callable[[], httpx.Request],
    *,
    backend: str,
    job_id: str | None = None,
    policy: RetryPolicy = RetryPolicy(),
    limiter: RateLimiter | None = None,
    clock: Clock | None = None,
    secrets: tuple[str | None, ...] = (),
    ok_statuses: frozenset[int] = frozenset(),
    rng: random.Random | None = None,
    on_retry: Callable[[VidmatteError, float], Awaitable[None] | None] | None = None,
) -> httpx.Response:
    """Send ``build()`` and return a successful response, retrying what is retryable.

    ``build`` is called for every try, so a POST rebuilt by it must carry the
    same idempotency key each time (mint the key once, outside ``build``).
    Retries: :class:`RateLimitedError` (``Retry-After`` honoured) and
    :class:`TransientError`, at most ``policy.attempts`` tries in all; any
    other error is raised at once.  Statuses in ``ok_statuses`` (e.g. 304)
    are returned instead of raised.
    """
    clock = clock or LoopClock()
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            await limiter.acquire()
        try:
            with map_transport_errors(backend=backend, job_id=job_id, secrets=secrets):
                response = await client.send(build())
                if limiter is not None:
                    limiter.observe_headers(response.headers)
                if response.status_code in ok_statuses or response.status_code < 400:
                    return response
                await response.aread()
            raise_for_response(response, backend=backend, job_id=job_id, secrets=secrets)
        except (RateLimitedError, TransientError) as exc:
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(exc, RateLimitedError) and limiter is not None and retry_after:
                limiter.pause(retry_after)
            if attempt >= policy.attempts or (retry_after or 0) > policy.max_retry_after:
                raise
            wait = policy.delay(attempt, retry_after, rng)
            if on_retry is not None:
                result = on_retry(exc, wait)
                if result is not None:
                    await result
            await clock.sleep(wait)


def read_json(response: httpx.Response, *, backend: str, job_id: str | None = None) -> Any:
    """The response's JSON body, or a :class:`ProtocolError` saying what came instead."""
    content_type = response.headers.get("content-type", "")
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        what = (
            "an HTML page"
            if "html" in content_type.lower() or response.content.lstrip()[:1] == b"<"
            else "malformed JSON"
        )
        raise ProtocolError(
            f"expected JSON from {response.request.url.path}, got {what}",
            backend=backend,
            job_id=job_id,
            status_code=response.status_code,
        ) from None


async def stream_to_file(
    client: httpx.AsyncClient,
    request: httpx.Request,
    dest: Path,
    *,
    backend: str,
    job_id: str | None = None,
    max_bytes: int | None = 20 * 1024**3,
    secrets: tuple[str | None, ...] = (),
) -> str:
    """Stream a download to ``dest`` through a temporary file; return its SHA-256 (hex).

    The file appears at ``dest`` only once complete: a short body (fewer bytes
    than ``Content-Length``), an oversized one, or a dropped connection leaves
    nothing behind and raises (:class:`TransientError` for the retryable cases).
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise MediaError(f"cannot write {str(dest)!r}: {exc.strerror}", backend=backend, job_id=job_id) from None
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, map_transport_errors(backend=backend, job_id=job_id, secrets=secrets):
            response = await client.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_response(response, backend=backend, job_id=job_id, secrets=secrets)
                # Content-Length counts encoded bytes; compare only when nothing re-encodes them.
                encoded = response.headers.get("content-encoding", "identity") != "identity"
                expected = None if encoded else response.headers.get("content-length")
                written = 0
                async for chunk in response.aiter_bytes():
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise ProtocolError(
                            f"download larger than the {max_bytes} byte limit", backend=backend, job_id=job_id
                        )
                    digest.update(chunk)
                    out.write(chunk)
                if expected is not None and expected.isdigit() and written != int(expected):
                    raise TransientError(
                        f"download truncated: {written} of {expected} bytes", backend=backend, job_id=job_id
                    )
            finally:
                await response.aclose()
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()

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
import functools
import hashlib
import json
import os
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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


_RNG = random.Random()
"""Jitter for retries; one generator (a new one per call would seed from os.urandom each time)."""


def default_transport() -> httpx.AsyncBaseTransport:
    """The transport used when none is injected.

    Chosen by measurement (``benchmarks/bench_request.py``): httpx's default
    async pool slows down under concurrency (about 10x slower than aiohttp at
    50 requests in flight on loopback), and the ``httpx-aiohttp`` transport
    spends as much CPU again as aiohttp itself.  So requests go through a lean
    transport on an aiohttp session: small bodies are read in one go (the
    connection returns to the pool before httpx sees the response), larger or
    unsized ones stream.  httpx stays the API: injected transports, respx
    mocks and streaming all work as before.
    """
    return _AiohttpTransport()


# Bodies up to this size (with a Content-Length) are read eagerly; anything else streams.
_EAGER_BODY = 256 * 1024
_CHUNK = 64 * 1024


def _map_aiohttp_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception matching an aiohttp (or timeout) failure."""
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.ReadError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.TransportError(message, request=request)


class _AiohttpStream(httpx.AsyncByteStream):
    """A response body streamed from aiohttp; closing it early drops the connection."""

    def __init__(self, response: Any, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_aiohttp_error(exc, self._request) from exc

    async def aclose(self) -> None:
        # release() keeps a fully read connection for reuse; an unread body cannot be reused.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class _AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent on an aiohttp session (one per event loop, made on first use)."""

    def __init__(self, *, max_connections: int = 100) -> None:
        self._max_connections = max_connections
        self._session: Any = None
        self._loop: Any = None
        self._timeouts: dict[tuple[float | None, ...], Any] = {}
        self._ssl: Any = None

    def _session_for_loop(self) -> Any:
        import asyncio

        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            if self._ssl is None:
                self._ssl = _ssl_context()
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            # httpx decodes content-encoding and sets its own default headers.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
            self._loop = loop
        return self._session

    def _timeout(self, request: httpx.Request) -> Any:
        import aiohttp

        spec = request.extensions.get("timeout") or {}
        key = (spec.get("connect"), spec.get("read"), spec.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=key[2], sock_connect=key[0], sock_read=key[1]
            )
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; map aiohttp's failures to httpx's exceptions."""
        import aiohttp

        session = self._session_for_loop()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            # A streamed body (multipart uploads): aiohttp frames it itself.
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            data = _iterate(request.stream)
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout(request),
                compress=False,
                server_hostname=request.extensions.get("sni_hostname"),
            )
            length = response.content_length
            body: bytes | None = None
            no_body = request.method == "HEAD" or response.status in (204, 304) or response.status < 200
            if no_body or (length is not None and length <= _EAGER_BODY):
                try:
                    body = await response.read()
                finally:
                    response.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_aiohttp_error(exc, request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        if body is not None:
            # Given as content, the body is decoded now and httpx's own read is a no-op.
            return httpx.Response(
                response.status, headers=response.raw_headers, content=body, request=request, extensions=extensions
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_AiohttpStream(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the session (its connections)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


@functools.cache
def _ssl_context() -> Any:
    """httpx's default verifying context (certifi), built once per process: it costs ~80 ms."""
    return httpx.create_ssl_context()


async def _iterate(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


def check_base_url(url: str, *, setting: str) -> str:
    """Refuse a non-HTTPS base URL unless it points at loopback (emulators, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}:
        return url.rstrip("/")
    raise ConfigurationError(f"{setting} must be an https:// URL (plain http only on loopback), got {url!r}")


def _current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` to read is racy with threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


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
        # The original stays reachable as __context__: scrub its text too, it may quote a URL
        # or header holding a secret.
        exc.args = tuple(redact(str(arg), *secrets) for arg in exc.args)
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
    rng = rng or _RNG
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
        # mkstemp makes the file private (0600); a finished download gets the usual mode.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()

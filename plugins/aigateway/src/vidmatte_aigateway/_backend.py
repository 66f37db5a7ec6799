"""The ``aigateway`` backend: AIgateway's job API for ``prama-labs/ben-v2-video``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
import httpx

from vidmatte import (
    Artefact,
    CancelOutcome,
    Capabilities,
    Cost,
    CostKind,
    InputMode,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
    OutputFormat,
    RateLimiter,
    next_state,
)
from vidmatte.contract import BackendContext
from vidmatte.errors import (
    AuthenticationError,
    ConfigurationError,
    MediaError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    VidmatteError,
)
from vidmatte.http import RetryPolicy, create_client, read_json, send, stream_to_file
from vidmatte_aigateway._parse import STATES, evolve_unchanged, parse_job, parse_timestamp
from vidmatte_aigateway._schema import pick_input_field
from vidmatte_aigateway._settings import AUTO, AigatewaySettings

__all__ = ["NAME", "AigatewayBackend", "static_capabilities"]

NAME = "aigateway"
_log = logging.getLogger("vidmatte.aigateway")

_REFRESHES = 3
"""Times an expired result URL is refreshed (by re-reading the job) before giving up."""
_SUBMIT_READS = 3
"""Submits sent (same idempotency key) while the gateway's 2xx answer is unreadable."""
_POLL_POLICY = RetryPolicy(attempts=1)
"""Polls send one request: the scheduler owns waiting and retrying them."""
_NOT_MODIFIED = frozenset({304})
_EXPIRY_MARGIN = 30.0
"""Seconds before a known expiry at which a URL is treated as expired already."""


def static_capabilities(settings: AigatewaySettings | None = None) -> Capabilities:
    """What the backend can do (``settings`` adjust the rate limit and poll interval)."""
    settings = settings or AigatewaySettings()
    return Capabilities(
        input_modes=frozenset({InputMode.URL, InputMode.UPLOAD}),
        outputs=frozenset(OutputFormat),
        # GUESS: the model's output is undocumented; BEN2 writes VP9 WebM with alpha.
        native_output=OutputFormat.WEBM,
        cancel=True,
        webhooks=True,
        requests_per_minute=settings.requests_per_minute,
        min_poll_interval=settings.min_poll_interval,
        failed_jobs_charged=False,
        cancelled_jobs_charged=False,
        # GUESS: the gateway's docs are silent on Idempotency-Key; the emulator honours it.
        # A user whose gateway does not can set idempotent_submit = false.
        idempotent_submit=settings.idempotent_submit,
    )


class AigatewayBackend:
    """:class:`vidmatte.MattingBackend` over AIgateway's ``/v1/videos/generations`` + ``/v1/jobs``.

    Accepts every documented variant of the job record (see
    :func:`vidmatte_aigateway.parse_job`).  Polls send one request at most
    (the scheduler owns waiting and retrying them); submits, cancels and
    downloads retry with backoff, a submit always with the caller's
    idempotency key.  The API key goes only to ``base_url`` and ``media_url``.
    """

    def __init__(self, settings: AigatewaySettings, context: BackendContext) -> None:
        if not settings.api_key:
            raise ConfigurationError("the aigateway backend needs an API key (AIGATEWAY_API_KEY)")
        self._settings = settings
        self._context = context
        self._key = settings.api_key
        self._secrets: tuple[str | None, ...] = (self._key,)
        self._clock = context.clock
        self._limiter = context.limiter or RateLimiter(settings.requests_per_minute, clock=context.clock)
        self._client = create_client(base_url=settings.base_url, transport=context.transport, timeout=settings.timeout)
        self._trusted = {_origin(settings.base_url), _origin(settings.media_url)}
        self._policy = RetryPolicy(attempts=settings.retry_attempts)
        self._capabilities = static_capabilities(settings)
        self._input_field: str | None = None if settings.input_field == AUTO else settings.input_field
        self._last: dict[str, JobSnapshot] = {}
        """The latest snapshot per job: what a 304 Not Modified means."""

    def __repr__(self) -> str:
        return f"AigatewayBackend(base_url={self._settings.base_url!r}, model={self._settings.model!r})"

    @property
    def name(self) -> str:
        """``"aigateway"``."""
        return NAME

    @property
    def capabilities(self) -> Capabilities:
        """URL or uploaded inputs, WebM out (converted by the client to anything else)."""
        return self._capabilities

    @property
    def settings(self) -> AigatewaySettings:
        """The effective settings (the key is hidden from their repr)."""
        return self._settings

    # -- requests ------------------------------------------------------------------------

    def _headers(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if _origin(url) in self._trusted:
            headers["Authorization"] = f"Bearer {self._key}"
        if self._settings.tag:
            headers["x-aig-tag"] = self._settings.tag
        return headers

    def _url(self, path: str) -> str:
        return self._settings.base_url + path

    async def _send(
        self,
        method: str,
        url: str,
        *,
        job_id: str | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        all_headers = self._headers(url, headers)

        def build() -> httpx.Request:
            return self._client.build_request(method, url, json=json_body, headers=all_headers)

        return await send(
            self._client,
            build,
            backend=NAME,
            job_id=job_id,
            policy=policy or self._policy,
            limiter=self._limiter,
            clock=self._clock,
            secrets=self._secrets,
            ok_statuses=ok_statuses,
        )

    # -- the contract --------------------------------------------------------------------

    async def estimate(self, request: MattingRequest) -> Cost:
        """Probed duration x price (ESTIMATED); zero with a note when the duration is unknown."""
        price = self._settings.price_per_second
        duration = request.media.duration if request.media is not None else None
        if duration is None and request.source.path is not None:
            duration = await asyncio.to_thread(_probe_duration, request.source.path)
        if duration is None:
            return Cost(Decimal(0), "USD", CostKind.ESTIMATED, "unknown: the source's duration was not probed")
        seconds = Decimal(str(round(duration, 3)))
        return Cost(seconds * price, "USD", CostKind.ESTIMATED, f"{seconds} s x USD {price}/s")

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        """Upload a local source if needed, then ``POST /v1/videos/generations`` (retried, one key)."""
        if not idempotency_key:
            raise ConfigurationError("submit needs an idempotency key")
        video_url = await self._input_url(request)
        field = await self._field()
        body: dict[str, Any] = {
            # Extra options first: the fields the backend owns must not be overridden.
            **{str(k): v for k, v in request.options.items()},
            "model": self._settings.model,
            "prompt": self._settings.prompt,
            field: video_url,
        }
        if self._settings.webhook_url:
            body["webhook_url"] = self._settings.webhook_url
        record, response = await self._submit_once(body, idempotency_key)
        job_id = record.get("id") or record.get("job_id") if isinstance(record, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise ProtocolError("the gateway accepted the job but returned no job id", backend=NAME)
        handle = JobHandle(
            backend=NAME,
            job_id=job_id,
            submitted_at=self._clock.wall(),
            media_duration=request.media.duration if request.media is not None else None,
            data={"model": self._settings.model, "idempotency_key": idempotency_key},
        )
        with contextlib.suppress(VidmatteError):
            self._last[job_id] = parse_job(
                record,
                handle,
                headers=response.headers,
                price_per_second=self._settings.price_per_second,
                observed_at=self._clock.wall(),
            )
        return handle

    async def _submit_once(self, body: dict[str, Any], idempotency_key: str) -> tuple[Any, httpx.Response]:
        """POST the job; an unreadable 2xx answer is asked again under the same key.

        The job may exist already, so only the idempotency key makes asking
        again safe: the gateway answers with the job it created the first time.
        """
        for attempt in range(1, _SUBMIT_READS + 1):
            response = await self._send(
                "POST",
                self._url("/v1/videos/generations"),
                json_body=body,
                headers={"Idempotency-Key": idempotency_key},
            )
            try:
                return read_json(response, backend=NAME), response
            except ProtocolError:
                if attempt == _SUBMIT_READS:
                    raise
                await self._clock.sleep(0.5 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        """``GET /v1/jobs/{id}``: one request; a 304 means "no change" (the previous snapshot)."""
        job_id = handle.job_id
        response = await self._send(
            "GET",
            self._url(f"/v1/jobs/{quote(job_id, safe='')}"),
            job_id=job_id,
            policy=_POLL_POLICY,
            ok_statuses=_NOT_MODIFIED,
        )
        now = self._clock.wall()
        interval = self._settings.min_poll_interval
        if response.status_code == 304:
            previous = self._last.get(job_id)
            if previous is None:
                # Reattached in a new process and polled too soon: nothing known yet.
                return JobSnapshot(handle, JobState.UNKNOWN, raw_status=None, poll_after=interval, observed_at=now)
            return evolve_unchanged(previous, poll_after=interval)
        snapshot = parse_job(
            read_json(response, backend=NAME, job_id=job_id),
            handle,
            headers=response.headers,
            price_per_second=self._settings.price_per_second,
            observed_at=now,
        )
        previous = self._last.get(job_id)
        if previous is not None:
            # Terminal states are final and running never goes back to queued, whatever
            # a flapping gateway (or a stale cache behind it) says next.
            state = next_state(previous.state, snapshot.state, job_id=job_id)
            if previous.state.is_terminal and state is not snapshot.state:
                # Keep what we knew; the same terminal state again is news (a re-signed URL).
                return attrs.evolve(previous, observed_at=now)
            if state is not snapshot.state:
                snapshot = attrs.evolve(snapshot, state=state)
        if snapshot.poll_after is None and not snapshot.state.is_terminal:
            snapshot = attrs.evolve(snapshot, poll_after=interval)
        self._last[job_id] = snapshot
        return snapshot

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """``DELETE /v1/jobs/{id}`` (spec, SDK), falling back to ``POST /v1/jobs/{id}/cancel`` (docs)."""
        job_id = handle.job_id
        path = f"/v1/jobs/{quote(job_id, safe='')}"
        fallback = frozenset({404, 405, 501})
        response = await self._send("DELETE", self._url(path), job_id=job_id, ok_statuses=fallback | {409})
        if response.status_code in fallback:
            response = await self._send(
                "POST", self._url(path + "/cancel"), job_id=job_id, ok_statuses=frozenset({409})
            )
        if response.status_code == 409:
            # GUESS: a conflict means the job can no longer be cancelled.
            return CancelOutcome.ALREADY_TERMINAL
        previous = self._last.get(job_id)
        if previous is not None and previous.state.is_terminal:
            return CancelOutcome.ALREADY_TERMINAL
        status = None
        if response.content.strip():
            with contextlib.suppress(VidmatteError):
                record = read_json(response, backend=NAME, job_id=job_id)
                status = record.get("status") if isinstance(record, dict) else None
        state = STATES.get(str(status).lower()) if status is not None else None
        if state is not None and state.is_terminal and state is not JobState.CANCELLED:
            return CancelOutcome.ALREADY_TERMINAL
        return CancelOutcome.ACCEPTED

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        """Stream the result to ``dest`` (temp file + rename), refreshing an expired URL."""
        refreshes = 0
        transient = 0
        while True:
            if artefact.expires_at is not None and self._clock.wall() >= artefact.expires_at - _EXPIRY_MARGIN:
                artefact, refreshes = await self._refresh(handle, artefact, refreshes)
                continue
            request = self._client.build_request("GET", artefact.url, headers=self._headers(artefact.url))
            try:
                await self._limiter.acquire()
                await stream_to_file(
                    self._client,
                    request,
                    Path(dest),
                    backend=NAME,
                    job_id=handle.job_id,
                    max_bytes=self._settings.max_download_bytes,
                    secrets=self._secrets,
                )
                return
            except (NotFoundError, AuthenticationError) as exc:
                # 403/404/410 from the file host: a signed URL past its life.
                if exc.status_code not in {403, 404, 410} or not self._on_file_host(artefact.url):
                    raise
                artefact, refreshes = await self._refresh(handle, artefact, refreshes)
            except (RateLimitedError, TransientError) as exc:
                transient += 1
                if transient >= self._settings.retry_attempts:
                    raise
                retry_after = getattr(exc, "retry_after", None)
                await self._clock.sleep(max(retry_after or 0.0, min(30.0, 0.5 * 2 ** (transient - 1))))

    def _on_file_host(self, url: str) -> bool:
        """True for the media host, any host that is not the API (signed URLs elsewhere), or a
        ``/v1/files/`` path on the API host (GUESS: a gateway serving files from one host)."""
        origin = _origin(url)
        if origin == _origin(self._settings.media_url) or origin != _origin(self._settings.base_url):
            return True
        return urlsplit(url).path.startswith("/v1/files/")

    async def _refresh(self, handle: JobHandle, stale: Artefact, refreshes: int) -> tuple[Artefact, int]:
        """A fresh URL for ``stale``: re-read the job (documented); when that gives nothing new
        yet (a 304 right after the last poll, or the same URL), ask the signed-URL endpoint."""
        if refreshes >= _REFRESHES:
            raise NotFoundError(
                "the result URL stayed expired after re-reading the job", backend=NAME, job_id=handle.job_id
            )
        for _ in range(4):
            try:
                snapshot = await self.poll(handle)
            except (RateLimitedError, TransientError) as exc:
                await self._clock.sleep(getattr(exc, "retry_after", None) or self._settings.min_poll_interval)
                continue
            fresh = snapshot.artefact(stale.role)
            if snapshot.state is JobState.SUCCEEDED and fresh is not None and fresh.url != stale.url:
                return fresh, refreshes + 1
            if snapshot.state.is_terminal and snapshot.state is not JobState.SUCCEEDED:
                raise NotFoundError(
                    f"the job is {snapshot.state.value} now: its result is gone", backend=NAME, job_id=handle.job_id
                )
            signed = await self._signed(handle, stale)
            if signed is not None and signed.url != stale.url:
                return signed, refreshes + 1
            await self._clock.sleep(snapshot.poll_after or self._settings.min_poll_interval)
        # The gateway keeps giving the same URL: try it again anyway, counting the refresh.
        return attrs.evolve(stale, expires_at=None), refreshes + 1

    async def _signed(self, handle: JobHandle, stale: Artefact) -> Artefact | None:
        """``GET /v1/files/jobs/{job}/{file}/signed?expires_in=3600`` next to the file, when the
        result is such a file on one of the gateway's hosts (GUESS: the endpoint lives where the
        files do; a file elsewhere never gets the key)."""
        parts = urlsplit(stale.url)
        path = parts.path.rstrip("/")
        pieces = path.split("/")
        if len(pieces) != 6 or pieces[1:4] != ["v1", "files", "jobs"] or _origin(stale.url) not in self._trusted:
            return None
        url = f"{parts.scheme}://{parts.netloc}{path}/signed?expires_in=3600"
        response = await self._send("GET", url, job_id=handle.job_id, ok_statuses=frozenset({404, 405}))
        if response.status_code in {404, 405}:
            return None
        answer = read_json(response, backend=NAME, job_id=handle.job_id)
        fresh = answer.get("url") if isinstance(answer, dict) else None
        if not isinstance(fresh, str) or not fresh:
            return None
        return attrs.evolve(stale, url=fresh, expires_at=parse_timestamp(answer.get("expires_at")))

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    # -- inputs --------------------------------------------------------------------------

    async def _input_url(self, request: MattingRequest) -> str:
        source = request.source
        if source.url is not None:
            return source.url
        uploader = self._context.uploader
        if uploader is None:
            raise ConfigurationError(
                "the aigateway backend takes video by URL; to send a local file configure an uploader "
                "(set VIDMATTE_UPLOAD_URL or [uploaders.http] url) or pass an https:// URL"
            )
        if source.path is not None:
            path = Path(source.path)
            if not path.is_file():
                raise MediaError(f"source {source.path!r} does not exist", backend=NAME)
            content_type = mimetypes.guess_type(path.name)[0] or "video/mp4"
            return await uploader.upload(path, content_type=content_type)
        # Bytes: spill to a temporary file the uploader can read.
        with tempfile.TemporaryDirectory(dir=self._context.cache_dir) as folder:
            path = Path(folder) / "source.mp4"
            path.write_bytes(source.data or b"")
            return await uploader.upload(path, content_type="video/mp4")

    async def _field(self) -> str:
        """The input field's name (read once from the model schema when set to "auto")."""
        if self._input_field is None:
            model = quote(self._settings.model, safe="/")
            response = await self._send("GET", self._url(f"/v1/models/{model}/schema"))
            self._input_field = pick_input_field(read_json(response, backend=NAME))
            _log.info("aigateway: the model schema names the input field %r", self._input_field)
        return self._input_field


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _probe_duration(path: str) -> float | None:
    """The duration of a local video in seconds, or ``None`` when it cannot be read."""
    import av

    try:
        with av.open(path) as container:
            if container.duration is not None:
                return float(container.duration) / 1_000_000
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except (OSError, av.error.FFmpegError, IndexError):
        return None
    return None

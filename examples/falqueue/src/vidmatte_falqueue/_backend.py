"""The falqueue backend: one class speaking a fal-style queue API through vidmatte's HTTP helpers."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx

from vidmatte import (
    Artefact,
    ArtefactRole,
    BackendContext,
    CancelOutcome,
    Capabilities,
    Cost,
    CostKind,
    InputMode,
    JobError,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
    OutputFormat,
    RateLimiter,
    next_state,
)
from vidmatte.errors import (
    AuthenticationError,
    NotFoundError,
    ProtocolError,
    TransientError,
    UnsupportedCapabilityError,
    parse_retry_after,
    raise_for_response,
)
from vidmatte.http import RetryPolicy, check_base_url, create_client, read_json, send, stream_to_file
from vidmatte_falqueue._settings import FalQueueSettings

__all__ = ["CAPABILITIES", "STATUSES", "FalQueueBackend"]

MAX_DURATION = 600.0
"""Seconds of video per job (a guess; estimates for clips of unknown length assume it)."""

CAPABILITIES = Capabilities(
    input_modes=frozenset({InputMode.URL}),
    native_output=OutputFormat.WEBM,
    cancel=True,
    max_duration=MAX_DURATION,
    min_poll_interval=1.0,
    failed_jobs_charged=False,
    cancelled_jobs_charged=False,
)
"""What the backend declares (also registered statically in the plugin's spec)."""

STATUSES: Mapping[str, JobState] = {
    "IN_QUEUE": JobState.QUEUED,
    "IN_PROGRESS": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    # Guesses: not in the documented queue API, seen on similar APIs.
    "FAILED": JobState.FAILED,
    "ERROR": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "CANCELED": JobState.CANCELLED,
}
"""Provider status -> vidmatte state; anything else is ``unknown``."""

_MEDIA_FORMATS = {
    "video/webm": (OutputFormat.WEBM, True),
    "video/quicktime": (OutputFormat.MOV, True),
    "video/mp4": (OutputFormat.MP4, False),
}
_DOWNLOAD_TRIES = 3


class FalQueueBackend:
    """A :class:`vidmatte.MattingBackend` for fal-style queues.

    The key goes only to the queue's own host (result files live on a CDN and
    are fetched without it), never into errors, logs or handles.
    """

    def __init__(self, settings: FalQueueSettings, context: BackendContext) -> None:
        self._settings = settings
        self._key = settings.api_key or ""
        self._base = check_base_url(settings.base_url, setting="backends.falqueue.base_url")
        self._api_host = urlsplit(self._base).netloc
        self._clock = context.clock
        self._limiter = context.limiter or RateLimiter(CAPABILITIES.requests_per_minute, clock=context.clock)
        self._policy = RetryPolicy(attempts=5)
        self._rng = random.Random()
        self._client = create_client(transport=context.transport, timeout=settings.timeout)
        self._last: dict[str, JobSnapshot] = {}

    def __repr__(self) -> str:
        return f"FalQueueBackend(base_url={self._base!r}, model={self._settings.model!r})"

    @property
    def name(self) -> str:
        """``falqueue``."""
        return "falqueue"

    @property
    def capabilities(self) -> Capabilities:
        """See :data:`CAPABILITIES`."""
        return CAPABILITIES

    # -- HTTP plumbing ---------------------------------------------------------------------
    def _build(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        headers = dict(kwargs.pop("headers", {}))
        # Only the queue's own host sees the key: a status or result URL elsewhere must not.
        if urlsplit(url).netloc == self._api_host:
            headers["Authorization"] = f"Key {self._key}"
        return self._client.build_request(method, url, headers=headers, **kwargs)

    async def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        job_id: str | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send with bounded retries of 429/5xx (Retry-After honoured), errors mapped, key redacted."""
        return await send(
            self._client,
            build,
            backend=self.name,
            job_id=job_id,
            policy=self._policy,
            limiter=self._limiter,
            clock=self._clock,
            secrets=(self._key,),
            ok_statuses=ok_statuses,
            rng=self._rng,
        )

    def _json(self, response: httpx.Response, job_id: str | None = None) -> dict[str, Any]:
        body = read_json(response, backend=self.name, job_id=job_id)
        if not isinstance(body, dict):
            raise ProtocolError(f"expected a JSON object, got {type(body).__name__}", backend=self.name, job_id=job_id)
        return body

    def _submit_headers(self, idempotency_key: str) -> dict[str, str]:
        # A guess: fal-style queues do not document idempotency, but a key sent is harmless
        # and lets a provider that honours it drop the duplicate of a retried POST.
        return {"Idempotency-Key": idempotency_key}

    def _map_status(self, raw: str) -> JobState:
        # Providers add statuses without notice: an unknown one is "keep polling", not a crash.
        return STATUSES.get(raw.upper(), JobState.UNKNOWN)

    async def _fetch(self, url: str, dest: Path, job_id: str) -> None:
        await stream_to_file(
            self._client, self._build("GET", url), dest, backend=self.name, job_id=job_id, secrets=(self._key,)
        )

    def _next_state(self, previous: JobState | None, reported: JobState, job_id: str) -> JobState:
        return reported if previous is None else next_state(previous, reported, job_id=job_id)

    def _urls(self, handle: JobHandle) -> tuple[str, str, str]:
        root = f"{self._base}/{self._settings.model}/requests/{handle.job_id}"
        data = handle.data
        return (
            data.get("status_url", f"{root}/status"),
            data.get("response_url", root),
            data.get("cancel_url", f"{root}/cancel"),
        )

    # -- the contract ----------------------------------------------------------------------
    async def estimate(self, request: MattingRequest) -> Cost:
        """Seconds of video x ``price_per_second``; clips of unknown length are priced at the maximum."""
        price = self._settings.price_per_second
        if request.media is not None:
            seconds = Decimal(str(request.media.duration))
            return Cost(seconds * price, kind=CostKind.ESTIMATED, detail=f"{seconds} s x USD {price}/s")
        return Cost(
            Decimal(str(MAX_DURATION)) * price,
            kind=CostKind.ESTIMATED,
            detail=f"duration unknown: priced at the {MAX_DURATION:.0f} s maximum",
        )

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        """``POST {base}/{model}`` with the source URL; every retry carries ``idempotency_key``."""
        if request.source.url is None:
            raise UnsupportedCapabilityError(
                "falqueue takes a source URL; local files need an uploader", backend=self.name
            )
        url = f"{self._base}/{self._settings.model}"
        body = {self._settings.input_field: request.source.url}
        response = await self._send(
            lambda: self._build("POST", url, json=body, headers=self._submit_headers(idempotency_key))
        )
        data = self._json(response)
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProtocolError("submit answered without a request_id", backend=self.name)
        urls = {k: v for k in ("status_url", "response_url", "cancel_url") if isinstance(v := data.get(k), str)}
        return JobHandle(
            backend=self.name,
            job_id=request_id,
            submitted_at=self._clock.wall(),
            media_duration=request.media.duration if request.media is not None else None,
            data=urls,
        )

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        """One status request (plus the result request once the job completed)."""
        status_url, _, _ = self._urls(handle)
        job_id = handle.job_id
        response = await self._send(lambda: self._build("GET", status_url), job_id=job_id)
        data = self._json(response, job_id)
        raw = data.get("status")
        if not isinstance(raw, str) or not raw:
            raise ProtocolError("status response without a status string", backend=self.name, job_id=job_id)
        reported = self._map_status(raw)
        if reported is JobState.SUCCEEDED and data.get("error"):
            reported = JobState.FAILED
        previous = self._last.get(job_id)
        state = self._next_state(previous.state if previous else None, reported, job_id)
        if previous is not None and previous.state.is_terminal and state is previous.state:
            # The provider said something else after the end: keep the final snapshot as it was.
            return attrs.evolve(previous, observed_at=self._clock.wall())
        artefacts: tuple[Artefact, ...] = ()
        if state is JobState.SUCCEEDED:
            artefacts = await self._result(handle)
        snapshot = JobSnapshot(
            handle=handle,
            state=state,
            raw_status=raw,
            queue_position=position if isinstance(position := data.get("queue_position"), int) else None,
            # A guess: some queues send Retry-After on status answers to pace polling.
            poll_after=parse_retry_after(response.headers.get("retry-after")),
            cost=self._cost(handle, state),
            error=self._error(data) if state is JobState.FAILED else None,
            artefacts=artefacts,
            observed_at=self._clock.wall(),
        )
        self._last[job_id] = snapshot
        return snapshot

    async def _result(self, handle: JobHandle) -> tuple[Artefact, ...]:
        _, response_url, _ = self._urls(handle)
        response = await self._send(lambda: self._build("GET", response_url), job_id=handle.job_id)
        data = self._json(response, handle.job_id)
        video = data.get("video")
        if not isinstance(video, dict) or not isinstance(video.get("url"), str):
            raise ProtocolError("result without video.url", backend=self.name, job_id=handle.job_id)
        media_type = str(video.get("content_type") or "video/webm").split(";")[0].strip()
        fmt, alpha = _MEDIA_FORMATS.get(media_type, (None, True))
        name = str(video.get("file_name") or Path(urlsplit(video["url"]).path).name)
        return (Artefact(ArtefactRole.COMPOSITE, video["url"], media_type, alpha, name=name, format=fmt),)

    def _cost(self, handle: JobHandle, state: JobState) -> Cost | None:
        if state is JobState.SUCCEEDED:
            seconds = Decimal(str(handle.media_duration if handle.media_duration is not None else MAX_DURATION))
            price = self._settings.price_per_second
            return Cost(seconds * price, kind=CostKind.FINAL, detail=f"{seconds} s x USD {price}/s")
        if state in {JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}:
            return Cost.zero(detail=f"{state.value} jobs are not charged")
        return None

    @staticmethod
    def _error(data: Mapping[str, Any]) -> JobError:
        error = data.get("error")
        if isinstance(error, dict):
            return JobError(str(error.get("message") or "the job failed"), str(error.get("code") or "") or None)
        code = data.get("error_type")
        return JobError(str(error or "the provider reported the job failed"), str(code) if code else None)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """``PUT cancel_url``: ``CANCELLATION_REQUESTED`` or ``ALREADY_COMPLETED``."""
        known = self._last.get(handle.job_id)
        if known is not None and known.state.is_terminal:
            return CancelOutcome.ALREADY_TERMINAL
        _, _, cancel_url = self._urls(handle)
        response = await self._send(
            lambda: self._build("PUT", cancel_url), job_id=handle.job_id, ok_statuses=frozenset({400})
        )
        await response.aread()
        status = None
        if response.content:
            status = self._json(response, handle.job_id).get("status")
        if status == "ALREADY_COMPLETED":
            return CancelOutcome.ALREADY_TERMINAL
        if response.status_code >= 400:
            raise_for_response(response, backend=self.name, job_id=handle.job_id, secrets=(self._key,))
        return CancelOutcome.ACCEPTED

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        """Stream to a temp file renamed at the end; an expired URL is refreshed once by re-polling."""
        url, refreshed = artefact.url, False
        for attempt in range(1, _DOWNLOAD_TRIES + 2):
            try:
                await self._fetch(url, dest, handle.job_id)
                return
            except (AuthenticationError, NotFoundError):
                # Signed result URLs expire (403/404/410): the job's result has a fresh one.
                if refreshed:
                    raise
                fresh = [a for a in await self._result(handle) if a.role is artefact.role]
                if not fresh:
                    raise
                url, refreshed = fresh[0].url, True
            except TransientError:
                if attempt >= _DOWNLOAD_TRIES:
                    raise
                await self._clock.sleep(self._policy.delay(attempt, None, self._rng))
        raise TransientError("download did not complete", backend=self.name, job_id=handle.job_id)  # pragma: no cover

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

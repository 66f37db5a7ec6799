"""Reading AIgateway's job records, whichever documented variant the gateway speaks.

Sources disagree (reference/providers.md section 1), so every reader here
accepts each documented shape; undocumented fields read "just in case" are
marked GUESS.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import attrs

from vidmatte import (
    Artefact,
    ArtefactRole,
    Cost,
    CostKind,
    JobError,
    JobHandle,
    JobSnapshot,
    JobState,
    OutputFormat,
)
from vidmatte.errors import ProtocolError

__all__ = ["STATES", "job_cost", "parse_job", "parse_timestamp", "result_fields"]

STATES: Mapping[str, JobState] = {
    "queued": JobState.QUEUED,
    "processing": JobState.RUNNING,  # model page, SDK
    "running": JobState.RUNNING,  # docs
    "completed": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,  # docs only; the SDK's status type lacks it
    "canceled": JobState.CANCELLED,  # GUESS: the US spelling, cheap to accept
}
"""Documented status strings; anything else is ``JobState.UNKNOWN`` (raw status kept)."""

# GUESS: the output's type is undocumented; these extensions name what BEN2 can emit.
_MEDIA_TYPES = {
    ".webm": "video/webm",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".zip": "application/zip",
    ".png": "image/png",
}
# GUESS: a WebM from this model is taken to be VP9 with alpha (what the open BEN2 code
# writes); nothing documents it.  Other types get no format, so the client converts.
_FORMATS = {"video/webm": OutputFormat.WEBM}


def parse_timestamp(value: object) -> float | None:
    """Epoch seconds from a number (seconds, or milliseconds when huge) or an ISO 8601 string."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            return None
        return number / 1000.0 if number > 1e11 else number
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return parse_timestamp(float(text))
        except ValueError:
            pass
        try:
            when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return when.timestamp()
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and number >= 0 else None


def result_fields(body: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """(result URL, result object) from any documented placement.

    ``result.url`` (model page), ``result.file_url`` (docs) or top-level
    ``result_url`` (SDK); GUESS: ``result`` given as a bare URL string.
    """
    result = body.get("result")
    details: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
    candidates = [details.get("url"), details.get("file_url"), body.get("result_url")]
    if isinstance(result, str):
        candidates.append(result)
    url = next((c for c in candidates if isinstance(c, str) and c.strip()), None)
    return (url.strip() if url else None), details


def _artefact(url: str, details: Mapping[str, Any], body: Mapping[str, Any]) -> Artefact:
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    suffix = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    # GUESS: a content type in the record (undocumented) beats the extension.
    declared = details.get("content_type") or details.get("mime_type")
    media_type = declared if isinstance(declared, str) and declared else _MEDIA_TYPES.get(suffix, "")
    media_type = media_type.split(";", 1)[0].strip().lower() or "application/octet-stream"
    output_format = _FORMATS.get(media_type)
    # GUESS: result expiry is documented only for the signed-URL endpoint's answer.
    expires_at = parse_timestamp(details.get("expires_at") or body.get("expires_at"))
    return Artefact(
        role=ArtefactRole.COMPOSITE,
        url=url,
        media_type=media_type,
        has_alpha=output_format is not None and output_format.has_alpha,
        expires_at=expires_at,
        name=name,
        format=output_format,
    )


def _error(body: Mapping[str, Any]) -> JobError | None:
    """The job's error: an object ``{code, message}`` (docs) or a plain string (SDK)."""
    error = body.get("error")
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("detail") or error.get("type") or "the job failed"
        code = error.get("code") or error.get("type")
        return JobError(str(message), str(code) if code is not None else None)
    if isinstance(error, str) and error.strip():
        return JobError(error.strip())
    return None


def job_cost(
    state: JobState,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    price_per_second: Decimal,
    fallback_duration: float | None,
) -> Cost | None:
    """What a job in ``state`` cost: reported by the gateway where it says, else derived.

    ``X-Cost-Cents`` (header) or ``usage.cost_cents`` (webhook bodies; GUESS:
    job records too) are REPORTED; otherwise a succeeded job costs its result
    duration (or the submitted duration) x price, FINAL.  Failed jobs are not
    charged (documented); cancelled ones are taken to be free too (GUESS: only
    queued jobs can be cancelled, and those never ran).
    """
    usage = body.get("usage")
    reported = _decimal(headers.get("x-cost-cents"))
    if reported is None and isinstance(usage, Mapping):
        reported = _decimal(usage.get("cost_cents"))
    if reported is not None and state.is_terminal:
        return Cost(reported / 100, "USD", CostKind.REPORTED, f"{reported} cents reported by the gateway")
    if state is JobState.FAILED:
        return Cost.zero(CostKind.FINAL, "failed jobs are not charged")
    if state is JobState.CANCELLED or state is JobState.EXPIRED:
        return Cost.zero(CostKind.FINAL, "cancelled before processing: not charged")
    if state is not JobState.SUCCEEDED:
        return None
    _, details = result_fields(body)
    duration = _number(details.get("duration"))
    source = "result duration"
    if duration is None:
        duration, source = fallback_duration, "submitted duration"
    if duration is None:
        return None
    seconds = Decimal(str(round(duration, 3)))
    return Cost(seconds * price_per_second, "USD", CostKind.FINAL, f"{seconds} s ({source}) x USD {price_per_second}/s")


def parse_job(
    body: object,
    handle: JobHandle,
    *,
    headers: Mapping[str, str] | None = None,
    price_per_second: Decimal,
    observed_at: float = 0.0,
) -> JobSnapshot:
    """A :class:`JobSnapshot` from a job record (a poll answer, a submit answer or a webhook body)."""
    if not isinstance(body, Mapping):
        raise ProtocolError(
            f"expected a job object, got {type(body).__name__}", backend=handle.backend, job_id=handle.job_id
        )
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    raw = body.get("status")
    raw_status = str(raw) if raw is not None else None
    state = STATES.get((raw_status or "").strip().lower(), JobState.UNKNOWN)
    url, details = result_fields(body)
    artefacts: tuple[Artefact, ...] = ()
    if state is JobState.SUCCEEDED:
        if url is None:
            raise ProtocolError(
                "the gateway reports the job completed but gives no result URL",
                backend=handle.backend,
                job_id=handle.job_id,
            )
        artefacts = (_artefact(url, details, body),)
    error = _error(body) if state in {JobState.FAILED, JobState.UNKNOWN, JobState.CANCELLED} else None
    if state is JobState.FAILED and error is None:
        error = JobError("the gateway reports the job failed without a reason")
    # GUESS: progress and queue position are undocumented; accept 0-1 or 0-100.
    progress = _number(body.get("progress"))
    if progress is not None:
        progress = max(0.0, min(1.0, progress / 100.0 if progress > 1.0 else progress))
    position = _number(body.get("queue_position"))
    poll_after = _number(lowered.get("retry-after"))
    return JobSnapshot(
        handle=handle,
        state=state,
        raw_status=raw_status,
        progress=progress,
        queue_position=int(position) if position is not None else None,
        poll_after=poll_after,
        cost=job_cost(
            state,
            body,
            lowered,
            price_per_second=price_per_second,
            fallback_duration=handle.media_duration,
        ),
        error=error,
        artefacts=artefacts,
        observed_at=observed_at,
    )


def evolve_unchanged(previous: JobSnapshot, *, poll_after: float) -> JobSnapshot:
    """The previous snapshot again, for a 304 Not Modified ("no change, poll later").

    ``observed_at`` stays that of the answer that carried the news, so observers
    comparing snapshots see no change.
    """
    return attrs.evolve(previous, poll_after=poll_after)

"""The replay scenarios: what each one sets up, and the steps that drive the backend.

Shared by the recorder (:mod:`vidmatte_aigateway.record`), which runs the steps
against the emulator (or the live gateway) and saves every HTTP exchange, and by
the replay helpers (:mod:`vidmatte_aigateway.testing`), which run the same steps
against the saved exchanges.  The steps' requests depend only on the answers
they get, so a replay sends exactly the recorded requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from vidmatte import CancelOutcome, JobHandle, JobSnapshot, JobState, MattingRequest, MediaInfo, Source
from vidmatte.errors import ProtocolError, ProviderError, RateLimitedError, TransientError, VidmatteError
from vidmatte_aigateway._backend import AigatewayBackend

__all__ = ["SCENARIOS", "ScenarioSpec", "run_steps"]

_MAX_POLLS = 400
_MAX_POLL_ERRORS = 8


@attrs.frozen
class ScenarioSpec:
    """How to record one scenario."""

    name: str
    description: str
    steps: str = "run"
    """``run`` (submit, poll to the end, download), ``cancel`` (submit, cancel, poll once),
    ``run_then_cancel`` (run, then cancel the finished job) or ``poll_unknown``."""
    emulator: dict[str, Any] = attrs.field(factory=dict)
    """Emulator switches (:class:`~vidmatte_aigateway.emulator.EmulatorConfig`)."""
    faults: tuple[dict[str, Any], ...] = ()
    """Faults to inject before the steps run."""
    settings: dict[str, Any] = attrs.field(factory=dict)
    """Backend settings besides hosts and key."""
    api_key: str | None = None
    """A key other than the emulator's (for the 401 scenario)."""
    live: bool = False
    """Safe and meaningful against the live gateway (recorded with ``--live``)."""


_FAST = {"min_poll_interval": 0.05}
_EMU_FAST = {"min_poll_interval": 0.0}

SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "happy_processing_result_url",
        "running state 'processing', result at result.url, no reported cost (FINAL from result.duration)",
        emulator={"running_state": "processing", "result_field": "result.url", **_EMU_FAST},
        settings=_FAST,
        live=True,
    ),
    ScenarioSpec(
        "happy_running_file_url_header_cost",
        "running state 'running', result at result.file_url, cost in X-Cost-Cents (REPORTED)",
        emulator={"running_state": "running", "result_field": "result.file_url", "cost_report": "header", **_EMU_FAST},
        settings=_FAST,
    ),
    ScenarioSpec(
        "happy_sdk_result_url",
        "top-level result_url without duration: cost from the submitted duration (FINAL)",
        emulator={"result_field": "result_url", **_EMU_FAST},
        settings=_FAST,
    ),
    ScenarioSpec(
        "happy_usage_cost",
        "cost in usage.cost_cents of the job record (REPORTED)",
        emulator={"cost_report": "usage", **_EMU_FAST},
        settings=_FAST,
    ),
    ScenarioSpec(
        "not_modified_304",
        "polls faster than the gateway's interval get 304 Not Modified: no change, poll later",
        emulator={"min_poll_interval": 0.4, "queue_seconds": 20.0},
        settings={"min_poll_interval": 0.1},
    ),
    ScenarioSpec(
        "schema_discovery",
        "input_field = auto: the field name ('video') is read from /v1/models/{id}/schema",
        emulator={"input_field": "video", **_EMU_FAST},
        settings={**_FAST, "input_field": "auto"},
    ),
    ScenarioSpec(
        "auth_401",
        "an unknown key: 401 authentication_error on submit",
        api_key="sk-aig-not-a-real-key",
        live=True,
    ),
    ScenarioSpec(
        "payment_402",
        "an account without credits: 402 insufficient_credits on submit",
        emulator={"accounts": {"sk-aig-emulator": {"credits": "0"}}},
    ),
    ScenarioSpec(
        "input_field_mismatch_400",
        "the model wants 'video', the backend sends 'video_url': 400 naming the field (use input_field = auto)",
        emulator={"input_field": "video"},
    ),
    ScenarioSpec("not_found_404", "polling a job the gateway does not know: 404", steps="poll_unknown", live=True),
    ScenarioSpec(
        "rate_limited_429_then_ok",
        "429 with Retry-After on the submit (retried, same idempotency key) and on a poll",
        emulator=_EMU_FAST,
        faults=({"kind": "429", "route": "submit", "count": 2}, {"kind": "429", "route": "poll", "count": 1}),
        settings=_FAST,
    ),
    ScenarioSpec(
        "server_error_5xx_then_ok",
        "500 twice on the submit, 503 on a poll: retried, then success",
        emulator=_EMU_FAST,
        faults=(
            {"kind": "5xx", "route": "submit", "count": 2, "status": 500},
            {"kind": "5xx", "route": "poll", "count": 1, "status": 503},
        ),
        settings=_FAST,
    ),
    ScenarioSpec(
        "job_failed_error_object",
        "the job fails; error as an object {code, message}; no charge",
        emulator={"error_shape": "object", **_EMU_FAST},
        faults=({"kind": "fail", "route": "submit"},),
        settings=_FAST,
    ),
    ScenarioSpec(
        "job_failed_error_string",
        "the job fails; error as a plain string (the SDK's shape); no charge",
        emulator={"error_shape": "string", **_EMU_FAST},
        faults=({"kind": "fail", "route": "submit"},),
        settings=_FAST,
    ),
    ScenarioSpec(
        "cancel_delete",
        "cancel a queued job with DELETE /v1/jobs/{id}",
        steps="cancel",
        emulator={"cancel_form": "delete", "queue_seconds": 30.0, **_EMU_FAST},
        settings=_FAST,
    ),
    ScenarioSpec(
        "cancel_post_fallback",
        "DELETE answers 405: fall back to POST /v1/jobs/{id}/cancel",
        steps="cancel",
        emulator={"cancel_form": "post", "queue_seconds": 30.0, **_EMU_FAST},
        settings=_FAST,
    ),
    ScenarioSpec(
        "cancel_already_terminal",
        "cancelling a completed job: 200 with the finished record, ALREADY_TERMINAL",
        steps="run_then_cancel",
        emulator=_EMU_FAST,
        settings=_FAST,
    ),
    ScenarioSpec(
        "expired_url",
        "the signed result URL has expired (403): re-read the job for a fresh one",
        emulator=_EMU_FAST,
        faults=({"kind": "expire", "route": "download"},),
        settings=_FAST,
    ),
    ScenarioSpec(
        "dropped_connection_submit",
        "the submit's answer is lost after the job was created: the retry reuses the key, one job",
        emulator=_EMU_FAST,
        faults=({"kind": "drop", "route": "submit"},),
        settings=_FAST,
    ),
    ScenarioSpec(
        "truncated_download",
        "the download stops half way: nothing is left behind, the retry completes it",
        emulator=_EMU_FAST,
        faults=({"kind": "truncate", "route": "download"},),
        settings=_FAST,
    ),
    ScenarioSpec(
        "malformed_json",
        "a poll answers 200 with a body that is not JSON: ProtocolError, the next poll succeeds",
        emulator=_EMU_FAST,
        faults=({"kind": "malformed", "route": "poll"},),
        settings=_FAST,
    ),
    ScenarioSpec(
        "html_proxy_page",
        "a proxy answers every submit with an HTML 502 page: TransientError naming the HTML page",
        faults=({"kind": "html", "route": "submit", "count": 3},),
        settings={**_FAST, "retry_attempts": 3},
    ),
)
"""Every scenario, in recording order."""


def _error_outcome(exc: VidmatteError) -> dict[str, Any]:
    return {
        "raised": type(exc).__name__,
        "status_code": exc.status_code,
        "message": exc.message,
    }


def _snapshot_outcome(snapshot: JobSnapshot) -> dict[str, Any]:
    artefact = snapshot.artefact()
    return {
        "state": snapshot.state.value,
        "raw_status": snapshot.raw_status,
        "cost": None if snapshot.cost is None else str(snapshot.cost.amount),
        "cost_kind": None if snapshot.cost is None else snapshot.cost.kind.value,
        "error": None if snapshot.error is None else [snapshot.error.code, snapshot.error.message],
        "media_type": None if artefact is None else artefact.media_type,
        "format": None if artefact is None or artefact.format is None else artefact.format.value,
    }


async def _wait(backend: AigatewayBackend, handle: JobHandle, errors: list[str]) -> JobSnapshot:
    """Poll until terminal, the way the scheduler does (honouring hints; retryable errors retried)."""
    clock = backend._clock
    failures = 0
    for _ in range(_MAX_POLLS):
        try:
            snapshot = await backend.poll(handle)
        except (RateLimitedError, TransientError, ProtocolError) as exc:
            errors.append(type(exc).__name__)
            failures += 1
            if failures >= _MAX_POLL_ERRORS:
                raise
            await clock.sleep(getattr(exc, "retry_after", None) or backend.capabilities.min_poll_interval)
            continue
        failures = 0
        if snapshot.state.is_terminal:
            return snapshot
        await clock.sleep(max(snapshot.poll_after or 0.0, backend.capabilities.min_poll_interval))
    raise TransientError("the job did not finish within the poll budget", backend="aigateway", job_id=handle.job_id)


async def run_steps(
    backend: AigatewayBackend,
    spec: ScenarioSpec,
    *,
    input_url: str,
    media_duration: float,
    workdir: Path,
) -> dict[str, Any]:
    """Drive ``backend`` through ``spec.steps``; return the outcome (JSON-ready)."""
    request = MattingRequest(Source(url=input_url), media=MediaInfo(media_duration, 10.0, 0, 0, 0))
    key = f"scenario-{spec.name}"
    errors: list[str] = []
    outcome: dict[str, Any] = {}
    try:
        if spec.steps == "poll_unknown":
            handle = JobHandle("aigateway", "job_does_not_exist", submitted_at=0.0)
            outcome.update(_snapshot_outcome(await backend.poll(handle)))
            return outcome
        estimate = await backend.estimate(request)
        outcome["estimate"] = str(estimate.amount)
        handle = await backend.submit(request, idempotency_key=key)
        if spec.steps == "cancel":
            outcome["cancel"] = (await backend.cancel(handle)).value
            await backend._clock.sleep(backend.capabilities.min_poll_interval)
            outcome.update(_snapshot_outcome(await _wait(backend, handle, errors)))
            return outcome
        snapshot = await _wait(backend, handle, errors)
        outcome.update(_snapshot_outcome(snapshot))
        artefact = snapshot.artefact()
        if snapshot.state is JobState.SUCCEEDED and artefact is not None:
            dest = workdir / f"{spec.name}.webm"
            await backend.download(handle, artefact, dest)
            outcome["downloaded_bytes"] = dest.stat().st_size
            outcome["leftovers"] = sorted(p.name for p in workdir.iterdir() if p.name.endswith(".part"))
        if spec.steps == "run_then_cancel":
            cancelled: CancelOutcome = await backend.cancel(handle)
            outcome["cancel"] = cancelled.value
    except ProviderError as exc:
        outcome.update(_error_outcome(exc))
    finally:
        outcome["poll_errors"] = errors
    return outcome

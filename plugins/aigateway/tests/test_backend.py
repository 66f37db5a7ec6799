"""The backend against hand-made answers (respx router on an injected MockTransport, virtual time)."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx
from vidmatte_aigateway import AigatewayBackend, load_settings

from vidmatte import (
    Artefact,
    ArtefactRole,
    BackendContext,
    CancelOutcome,
    CostKind,
    JobHandle,
    JobState,
    LoopClock,
    MattingRequest,
    MediaInfo,
    RateLimiter,
    Source,
)
from vidmatte.errors import (
    AuthenticationError,
    NotFoundError,
    PaymentRequiredError,
    ProtocolError,
    RateLimitedError,
    VidmatteError,
)
from vidmatte.testing import run_virtual

KEY = "sk-aig-0123456789abcdef"
API = "https://api.aigateway.sh"
MEDIA = "https://media.aigateway.sh"
FILE = f"{MEDIA}/v1/files/jobs/job_1/output.webm"
T = TypeVar("T")


def make(router: respx.Router, settings: dict[str, Any] | None = None, **context: Any) -> AigatewayBackend:
    data = {"api_key": KEY, "tag": "team-a", **(settings or {})}
    return AigatewayBackend(
        load_settings(data, {}), BackendContext(transport=httpx.MockTransport(router.handler), **context)
    )


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return run_virtual(body())


REQUEST = MattingRequest(Source(url="https://cdn.example.com/in.mp4"), media=MediaInfo(4.0, 25.0, 100, 640, 360))
HANDLE = JobHandle("aigateway", "job_1", submitted_at=0.0, media_duration=4.0)


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "job_1", "object": "job", "status": status, **extra}


def test_submit_retries_with_one_idempotency_key() -> None:
    router = respx.Router()
    route = router.post(f"{API}/v1/videos/generations").mock(
        side_effect=[
            httpx.Response(429, json={"error": {"type": "rate_limit_error"}}, headers={"Retry-After": "7"}),
            httpx.Response(503, json={"error": {"message": "saturated"}}),
            httpx.Response(202, json=job("queued")),
        ]
    )

    async def main() -> tuple[JobHandle, float]:
        backend = make(router)
        clock = LoopClock()
        start = clock.monotonic()
        handle = await backend.submit(REQUEST, idempotency_key="idem-1")
        await backend.aclose()
        return handle, clock.monotonic() - start

    handle, elapsed = run(main)
    assert handle.job_id == "job_1"
    assert handle.media_duration == 4.0
    assert elapsed >= 7.0
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert keys == {"idem-1"}
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["x-aig-tag"] == "team-a"
    body = json.loads(request.content)
    assert body == {
        "model": "prama-labs/ben-v2-video",
        "prompt": "remove the background",
        "video_url": "https://cdn.example.com/in.mp4",
    }


def test_submit_options_cannot_override_owned_fields() -> None:
    router = respx.Router()
    route = router.post(f"{API}/v1/videos/generations").respond(202, json=job("queued"))
    request = MattingRequest(
        Source(url="https://cdn.example.com/in.mp4"), options={"model": "other", "resolution": "1080p"}
    )

    async def main() -> None:
        backend = make(router, {"webhook_url": "https://hooks.example.com/aig"})
        await backend.submit(request, idempotency_key="k")
        await backend.aclose()

    run(main)
    body = json.loads(route.calls.last.request.content)
    assert body["model"] == "prama-labs/ben-v2-video"
    assert body["resolution"] == "1080p"
    assert body["webhook_url"] == "https://hooks.example.com/aig"


def test_unreadable_submit_answer_is_asked_again_under_the_same_key() -> None:
    router = respx.Router()
    route = router.post(f"{API}/v1/videos/generations").mock(
        side_effect=[httpx.Response(202, text='{"id": "jo'), httpx.Response(202, json=job("queued"))]
    )

    async def main() -> JobHandle:
        backend = make(router)
        handle = await backend.submit(REQUEST, idempotency_key="same")
        await backend.aclose()
        return handle

    assert run(main).job_id == "job_1"
    assert [c.request.headers["Idempotency-Key"] for c in route.calls] == ["same", "same"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (402, PaymentRequiredError), (404, NotFoundError), (400, VidmatteError)],
)
def test_submit_errors_map(status: int, error: type[Exception]) -> None:
    router = respx.Router()
    router.post(f"{API}/v1/videos/generations").respond(status, json={"error": {"message": "no", "code": "x"}})

    async def main() -> None:
        backend = make(router)
        try:
            await backend.submit(REQUEST, idempotency_key="k")
        finally:
            await backend.aclose()

    with pytest.raises(error):
        run(main)


def test_schema_discovery_is_done_once() -> None:
    router = respx.Router()
    schema = router.get(f"{API}/v1/models/prama-labs/ben-v2-video/schema").respond(
        200, json={"input": {"properties": {"prompt": {}, "input_video": {}}}}
    )
    submit = router.post(f"{API}/v1/videos/generations").respond(202, json=job("queued"))

    async def main() -> None:
        backend = make(router, {"input_field": "auto"})
        await backend.submit(REQUEST, idempotency_key="a")
        await backend.submit(REQUEST, idempotency_key="b")
        await backend.aclose()

    run(main)
    assert schema.call_count == 1
    assert "input_video" in json.loads(submit.calls.last.request.content)


def test_poll_is_one_request_and_raises_rate_limits_to_the_scheduler() -> None:
    router = respx.Router()
    route = router.get(f"{API}/v1/jobs/job_1").respond(429, headers={"Retry-After": "12"})

    async def main() -> None:
        backend = make(router)
        try:
            await backend.poll(HANDLE)
        finally:
            await backend.aclose()

    with pytest.raises(RateLimitedError) as caught:
        run(main)
    assert caught.value.retry_after == 12
    assert route.call_count == 1


def test_304_means_no_change() -> None:
    router = respx.Router()
    router.get(f"{API}/v1/jobs/job_1").mock(
        side_effect=[httpx.Response(304), httpx.Response(200, json=job("processing")), httpx.Response(304)]
    )

    async def main() -> list[Any]:
        backend = make(router)
        seen = [await backend.poll(HANDLE) for _ in range(3)]
        await backend.aclose()
        return seen

    first, second, third = run(main)
    assert first.state is JobState.UNKNOWN
    assert first.poll_after == 3.0
    assert second.state is JobState.RUNNING
    assert third.state is JobState.RUNNING
    assert third.raw_status == "processing"
    assert third.poll_after == 3.0


def test_terminal_state_is_final_even_if_the_gateway_flaps() -> None:
    router = respx.Router()
    done = job("completed", result={"url": FILE, "duration": 4.0})
    router.get(f"{API}/v1/jobs/job_1").mock(
        side_effect=[
            httpx.Response(200, json=job("processing")),
            httpx.Response(200, json=job("queued")),
            httpx.Response(200, json=done),
            httpx.Response(200, json=job("processing")),
        ]
    )

    async def main() -> list[JobState]:
        backend = make(router)
        states = [(await backend.poll(HANDLE)).state for _ in range(4)]
        await backend.aclose()
        return states

    assert run(main) == [JobState.RUNNING, JobState.RUNNING, JobState.SUCCEEDED, JobState.SUCCEEDED]


def test_rate_limit_headers_feed_the_limiter() -> None:
    router = respx.Router()
    headers = {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6",
    }
    router.get(f"{API}/v1/jobs/job_1").respond(200, json=job("queued"), headers=headers)

    async def main() -> tuple[float | None, float]:
        limiter = RateLimiter(600)
        backend = make(router, limiter=limiter)
        await backend.poll(HANDLE)
        await backend.aclose()
        return limiter.rate, limiter.delay()

    rate, delay = run(main)
    assert rate == pytest.approx(10 * 0.95 / 60)
    assert delay >= 5.9


def test_capabilities_follow_settings() -> None:
    backend = make(respx.Router(), {"requests_per_minute": 10, "min_poll_interval": 5})
    caps = backend.capabilities
    assert caps.requests_per_minute == 10
    assert caps.min_poll_interval == 5
    assert not caps.failed_jobs_charged
    run(backend.aclose)


@pytest.mark.parametrize(
    ("answers", "outcome", "posts"),
    [
        ([httpx.Response(200, json=job("cancelled"))], CancelOutcome.ACCEPTED, 0),
        ([httpx.Response(204)], CancelOutcome.ACCEPTED, 0),
        ([httpx.Response(200, json=job("completed", result_url=FILE))], CancelOutcome.ALREADY_TERMINAL, 0),
        ([httpx.Response(409, json={"error": {"message": "done"}})], CancelOutcome.ALREADY_TERMINAL, 0),
        ([httpx.Response(405), httpx.Response(200, json=job("cancelled"))], CancelOutcome.ACCEPTED, 1),
        ([httpx.Response(404), httpx.Response(200, json=job("failed"))], CancelOutcome.ALREADY_TERMINAL, 1),
    ],
)
def test_cancel_forms(answers: list[httpx.Response], outcome: CancelOutcome, posts: int) -> None:
    router = respx.Router()
    router.delete(f"{API}/v1/jobs/job_1").mock(side_effect=answers[:1])
    post = router.post(f"{API}/v1/jobs/job_1/cancel").mock(side_effect=answers[1:])

    async def main() -> CancelOutcome:
        backend = make(router)
        result = await backend.cancel(HANDLE)
        await backend.aclose()
        return result

    assert run(main) is outcome
    assert post.call_count == posts


def test_cancel_unknown_job_is_not_found() -> None:
    router = respx.Router()
    router.delete(f"{API}/v1/jobs/job_1").respond(404)
    router.post(f"{API}/v1/jobs/job_1/cancel").respond(404, json={"error": {"message": "Job not found."}})

    async def main() -> None:
        backend = make(router)
        try:
            await backend.cancel(HANDLE)
        finally:
            await backend.aclose()

    with pytest.raises(NotFoundError):
        run(main)


def _artefact(url: str = FILE, expires_at: float | None = None) -> Artefact:
    return Artefact(ArtefactRole.COMPOSITE, url, expires_at=expires_at, name="output.webm")


def test_download_refreshes_a_url_known_to_be_expired(tmp_path: Path) -> None:
    router = respx.Router()
    fresh = FILE + "?sig=new"
    router.get(f"{API}/v1/jobs/job_1").respond(200, json=job("completed", result={"url": fresh}))
    stale = router.get(FILE, params={"sig": "old"}).respond(403)
    good = router.get(FILE, params={"sig": "new"}).respond(200, content=b"webm-bytes")

    async def main() -> None:
        backend = make(router)
        await backend.download(HANDLE, _artefact(FILE + "?sig=old", expires_at=1.0), tmp_path / "out.webm")
        await backend.aclose()

    run(main)
    assert stale.call_count == 0
    assert good.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"
    assert (tmp_path / "out.webm").read_bytes() == b"webm-bytes"


def test_download_gives_up_when_the_url_stays_expired(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(f"{API}/v1/jobs/job_1").mock(
        side_effect=[httpx.Response(200, json=job("completed", result={"url": f"{FILE}?v={i}"})) for i in range(10)]
    )
    router.route(method="GET", host="media.aigateway.sh").respond(410, json={"error": {"message": "gone"}})

    async def main() -> None:
        backend = make(router)
        try:
            await backend.download(HANDLE, _artefact(), tmp_path / "out.webm")
        finally:
            await backend.aclose()

    with pytest.raises(NotFoundError, match="stayed expired"):
        run(main)
    assert list(tmp_path.iterdir()) == []


def test_key_is_not_sent_to_foreign_hosts(tmp_path: Path) -> None:
    router = respx.Router()
    foreign = router.get("https://bucket.s3.example.com/out.webm").respond(200, content=b"x")

    async def main() -> None:
        backend = make(router)
        await backend.download(HANDLE, _artefact("https://bucket.s3.example.com/out.webm"), tmp_path / "o.webm")
        await backend.aclose()

    run(main)
    assert "Authorization" not in foreign.calls.last.request.headers


def test_download_is_bounded(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(FILE).respond(200, content=b"x" * 5000)

    async def main() -> None:
        backend = make(router, {"max_download_bytes": 1000})
        try:
            await backend.download(HANDLE, _artefact(), tmp_path / "o.webm")
        finally:
            await backend.aclose()

    with pytest.raises(ProtocolError, match="limit"):
        run(main)
    assert list(tmp_path.iterdir()) == []


def test_download_retries_truncated_bodies(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(FILE).mock(
        side_effect=[
            httpx.Response(200, content=b"half", headers={"content-length": "8"}),
            httpx.Response(200, content=b"complete"),
        ]
    )

    async def main() -> None:
        backend = make(router)
        await backend.download(HANDLE, _artefact(), tmp_path / "o.webm")
        await backend.aclose()

    run(main)
    assert (tmp_path / "o.webm").read_bytes() == b"complete"


def test_estimate(tmp_path: Path, clip: Path) -> None:
    async def main() -> list[Any]:
        backend = make(respx.Router())
        costs = [
            await backend.estimate(REQUEST),
            await backend.estimate(MattingRequest(Source(path=str(clip)))),
            await backend.estimate(MattingRequest(Source(url="https://x.example/v.mp4"))),
        ]
        await backend.aclose()
        return costs

    known, probed, unknown = run(main)
    assert (known.amount, known.kind) == (Decimal("0.004"), CostKind.ESTIMATED)
    assert probed.amount == Decimal("0.002")
    assert unknown.amount == 0
    assert "unknown" in unknown.detail


def test_bytes_source_goes_through_the_uploader() -> None:
    uploaded: list[bytes] = []

    class Uploader:
        async def upload(self, path: Path, *, content_type: str) -> str:
            uploaded.append(path.read_bytes())
            return "https://uploads.example.com/abc.mp4"

    router = respx.Router()
    route = router.post(f"{API}/v1/videos/generations").respond(202, json=job("queued"))

    async def main() -> None:
        backend = make(router, uploader=Uploader())
        await backend.submit(MattingRequest(Source(data=b"video-bytes")), idempotency_key="k")
        await backend.aclose()

    run(main)
    assert uploaded == [b"video-bytes"]
    assert json.loads(route.calls.last.request.content)["video_url"] == "https://uploads.example.com/abc.mp4"


def test_the_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    router = respx.Router()
    echo = {"error": {"message": f"key {KEY} is invalid", "code": "invalid_key"}}
    router.post(f"{API}/v1/videos/generations").respond(401, json=echo)
    router.get(f"{API}/v1/jobs/job_1").mock(side_effect=httpx.ConnectError(f"cannot reach with Bearer {KEY}"))
    seen: list[str] = []

    async def main() -> None:
        backend = make(router)
        seen.extend([repr(backend), str(backend), repr(backend.settings)])
        for call in (backend.submit(REQUEST, idempotency_key="k"), backend.poll(HANDLE)):
            try:
                await call
            except VidmatteError as exc:
                # The formatted traceback is what logs and crash reports show.
                seen.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
        await backend.aclose()

    run(main)
    assert any("invalid" in text for text in seen)
    assert any(isinstance(text, str) and "network error" in text for text in seen)
    for text in [*seen, caplog.text]:
        assert KEY not in text
        assert "0123456789abcdef" not in text


def test_refresh_asks_the_signed_url_endpoint_when_the_job_says_nothing_new(tmp_path: Path) -> None:
    router = respx.Router()
    poll = router.get(f"{API}/v1/jobs/job_1").respond(304)
    signed = router.get(f"{FILE}/signed", params={"expires_in": "3600"}).respond(
        200, json={"url": FILE + "?sig=fresh", "expires_at": "2099-01-01T00:00:00Z"}
    )
    router.get(FILE, params={"sig": "old"}).respond(403, json={"error": {"code": "url_expired"}})
    router.get(FILE, params={"sig": "fresh"}).respond(200, content=b"fresh-bytes")

    async def main() -> None:
        backend = make(router)
        await backend.download(HANDLE, _artefact(FILE + "?sig=old"), tmp_path / "out.webm")
        await backend.aclose()

    run(main)
    assert poll.call_count == 1
    assert signed.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"
    assert (tmp_path / "out.webm").read_bytes() == b"fresh-bytes"


def test_a_failed_job_has_no_result_to_refresh(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(f"{API}/v1/jobs/job_1").respond(200, json=job("failed", error="gone"))
    router.get(FILE).respond(410)

    async def main() -> None:
        backend = make(router)
        try:
            await backend.download(HANDLE, _artefact(), tmp_path / "out.webm")
        finally:
            await backend.aclose()

    with pytest.raises(NotFoundError, match="failed now"):
        run(main)

"""The HTTP helpers plugins share: retries, idempotent resubmits, safe JSON, atomic downloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import respx

from vidmatte import RateLimiter
from vidmatte.errors import AuthenticationError, ConfigurationError, ProtocolError, TransientError
from vidmatte.http import RetryPolicy, check_base_url, create_client, read_json, send, stream_to_file
from vidmatte.testing import run_virtual

BASE = "https://api.example.test"


def _client(router: respx.Router) -> httpx.AsyncClient:
    return create_client(base_url=BASE, transport=httpx.MockTransport(router.handler))


def test_a_submit_is_retried_with_the_same_idempotency_key() -> None:
    router = respx.Router(assert_all_called=False)
    route = router.post(f"{BASE}/submit").mock(
        side_effect=[
            httpx.Response(503, json={"error": {"message": "saturated"}}),
            httpx.Response(429, headers={"Retry-After": "8"}, json={"error": {"message": "slow"}}),
            httpx.Response(202, json={"id": "job-1"}),
        ]
    )

    async def main() -> tuple[httpx.Response, float]:
        loop_start = asyncio.get_running_loop().time()
        async with _client(router) as client:
            key = "key-minted-once"
            response = await send(
                client, lambda: client.build_request("POST", "/submit", headers={"Idempotency-Key": key}), backend="t"
            )
        return response, asyncio.get_running_loop().time() - loop_start

    response, waited = run_virtual(main())
    assert response.json() == {"id": "job-1"}
    assert route.call_count == 3
    assert {call.request.headers["Idempotency-Key"] for call in route.calls} == {"key-minted-once"}
    assert waited >= 8.0


def test_non_retryable_errors_are_sent_once() -> None:
    router = respx.Router()
    route = router.get(f"{BASE}/jobs/1").mock(return_value=httpx.Response(401, json={"error": {"message": "bad key"}}))

    async def main() -> None:
        async with _client(router) as client:
            await send(client, lambda: client.build_request("GET", "/jobs/1"), backend="t")

    with pytest.raises(AuthenticationError):
        run_virtual(main())
    assert route.call_count == 1


def test_retries_are_bounded_and_network_errors_are_transient() -> None:
    router = respx.Router()
    route = router.get(f"{BASE}/jobs/1").mock(side_effect=httpx.ConnectError("connection refused"))

    async def main() -> None:
        async with _client(router) as client:
            await send(
                client, lambda: client.build_request("GET", "/jobs/1"), backend="t", policy=RetryPolicy(attempts=3)
            )

    with pytest.raises(TransientError, match="network error"):
        run_virtual(main())
    assert route.call_count == 3


def test_rate_limit_headers_feed_the_limiter() -> None:
    router = respx.Router()
    router.get(f"{BASE}/jobs/1").mock(
        return_value=httpx.Response(
            200,
            json={},
            headers={
                "x-ratelimit-limit-requests": "10",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "30",
            },
        )
    )

    async def main() -> float:
        limiter = RateLimiter(600)
        async with _client(router) as client:
            await send(client, lambda: client.build_request("GET", "/jobs/1"), backend="t", limiter=limiter)
        return limiter.delay()

    assert run_virtual(main()) >= 29.0


def test_html_and_malformed_bodies_are_protocol_errors() -> None:
    request = httpx.Request("GET", f"{BASE}/jobs/1")
    with pytest.raises(ProtocolError, match="HTML page"):
        read_json(
            httpx.Response(200, text="<html>proxy</html>", headers={"content-type": "text/html"}, request=request),
            backend="t",
        )
    with pytest.raises(ProtocolError, match="malformed JSON"):
        read_json(httpx.Response(200, text='{"state": ', request=request), backend="t")


def test_downloads_appear_only_when_complete(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(f"{BASE}/ok").mock(return_value=httpx.Response(200, content=b"x" * 1000))
    router.get(f"{BASE}/short").mock(
        return_value=httpx.Response(200, content=b"x" * 10, headers={"content-length": "1000"})
    )
    router.get(f"{BASE}/big").mock(return_value=httpx.Response(200, content=b"x" * 5000))

    async def main() -> str:
        async with _client(router) as client:
            digest = await stream_to_file(client, client.build_request("GET", "/ok"), tmp_path / "ok.bin", backend="t")
            with pytest.raises(TransientError, match="truncated"):
                await stream_to_file(client, client.build_request("GET", "/short"), tmp_path / "short.bin", backend="t")
            with pytest.raises(ProtocolError, match="limit"):
                await stream_to_file(
                    client, client.build_request("GET", "/big"), tmp_path / "big.bin", backend="t", max_bytes=1000
                )
        return digest

    digest = run_virtual(main())
    assert (tmp_path / "ok.bin").stat().st_size == 1000
    assert len(digest) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.bin"]


@pytest.mark.parametrize("url", ["http://api.example.test", "ftp://x", "api.example.test"])
def test_plain_http_is_refused_except_on_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        check_base_url(url, setting="base_url")
    assert check_base_url("http://127.0.0.1:8080/", setting="base_url") == "http://127.0.0.1:8080"


def test_network_errors_keep_no_trace_of_a_secret() -> None:
    secret = "sk-hidden-987654321"
    router = respx.Router()
    router.get(f"{BASE}/jobs/1").mock(side_effect=httpx.ConnectError(f"failed for https://x/?key={secret}"))

    async def main() -> None:
        async with _client(router) as client:
            await send(
                client,
                lambda: client.build_request("GET", "/jobs/1"),
                backend="t",
                policy=RetryPolicy(attempts=1),
                secrets=(secret,),
            )

    with pytest.raises(TransientError) as info:
        run_virtual(main())
    assert secret not in str(info.value)
    assert info.value.__suppress_context__
    assert secret not in repr(info.value.__context__)


def test_finished_downloads_get_the_usual_file_mode(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(f"{BASE}/ok").mock(return_value=httpx.Response(200, content=b"data"))

    async def main() -> None:
        async with _client(router) as client:
            await stream_to_file(client, client.build_request("GET", "/ok"), tmp_path / "ok.bin", backend="t")

    run_virtual(main())
    assert (tmp_path / "ok.bin").stat().st_mode & 0o044 == 0o044

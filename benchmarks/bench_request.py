"""B1, the request path: one status poll through the framework vs raw clients, same server.

A canned-response HTTP server runs in its own process pinned to CPU 1; this
process is pinned to CPU 0.  Each client sends status polls (GET + JSON) with
1 and with 50 requests in flight:

* ``aiohttp`` raw: ``ClientSession.get`` + ``json()``;
* ``httpx`` raw, default async pool: ``AsyncClient.get`` + ``json()``;
* ``httpx`` raw on the ``httpx-aiohttp`` transport;
* ``vidmatte`` poll: the ``aigateway`` backend's ``poll`` (request build, rate
  limiter fed from headers, error mapping, JSON parsing into a ``JobSnapshot``,
  state checks) plus one ``vidmatte_job_event`` hook call, on
  :func:`vidmatte.http.default_transport`;
* the same on httpx's default transport (what the default transport is chosen against).

Figures: requests/s (wall) and client CPU microseconds per request, each
round interleaved across clients (shared machines drift), median of rounds.

    .venv/bin/python benchmarks/bench_request.py [--quick] [--profile]

Targets: framework CPU per poll <= 1.3x raw aiohttp; framework throughput at 50
in flight >= 4x raw httpx on its default pool.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    PYTHON,
    ROOT,
    cpu_seconds,
    free_port,
    median,
    pin,
    start_process,
    stop_process,
    table,
    verdict,
)

Poll = Callable[[], Awaitable[Any]]


async def measure(poll: Poll, total: int, in_flight: int) -> tuple[float, float]:
    """(requests per second, client CPU microseconds per request) for ``total`` polls."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await poll()

    for _ in range(min(in_flight * 2, 100)):  # warm the connections
        await poll()
    gc.collect()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    return total / wall, cpu / total * 1e6


async def clients(stack: AsyncExitStack, base: str) -> dict[str, Poll]:
    import aiohttp
    import httpx
    from httpx_aiohttp import AiohttpTransport

    import vidmatte
    from vidmatte import BackendContext, JobHandle, RateLimiter
    from vidmatte.contract import EventKind, JobEvent
    from vidmatte.http import default_transport

    url = base + "/v1/jobs/job_0123456789abcdef0123"
    headers = {"Authorization": "Bearer sk-bench"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)

    session = await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)))

    async def aiohttp_poll() -> Any:
        async with session.get(url, headers=headers) as response:
            return await response.json()

    httpx_default = await stack.enter_async_context(httpx.AsyncClient(limits=limits))

    async def httpx_poll() -> Any:
        return (await httpx_default.get(url, headers=headers)).json()

    httpx_aio = await stack.enter_async_context(httpx.AsyncClient(limits=limits, transport=AiohttpTransport()))

    async def httpx_aio_poll() -> Any:
        return (await httpx_aio.get(url, headers=headers)).json()

    httpx_lean = await stack.enter_async_context(httpx.AsyncClient(limits=limits, transport=default_transport()))

    async def httpx_lean_poll() -> Any:
        return (await httpx_lean.get(url, headers=headers)).json()

    plugins = vidmatte.load_plugins(environ={})
    spec = plugins.backend_spec("aigateway")
    settings = {"base_url": base, "media_url": base, "api_key": "sk-bench", "min_poll_interval": 0.0}
    handle = JobHandle("aigateway", "job_0123456789abcdef0123", time.time(), 30.0)

    def framework(transport: Any) -> Poll:
        backend = spec.factory(
            BackendContext(settings=settings, env={}, transport=transport, limiter=RateLimiter(600.0))
        )
        stack.push_async_callback(backend.aclose)
        hook = plugins.hook

        async def poll() -> Any:
            snapshot = await backend.poll(handle)
            hook.vidmatte_job_event(
                event=JobEvent(EventKind.PROGRESS, "aigateway", "bench", handle=handle, snapshot=snapshot)
            )
            return snapshot

        return poll

    return {
        "aiohttp (raw)": aiohttp_poll,
        "httpx default pool (raw)": httpx_poll,
        "httpx + httpx-aiohttp transport (raw)": httpx_aio_poll,
        "httpx + vidmatte default_transport() (raw)": httpx_lean_poll,
        "vidmatte poll, default_transport()": framework(default_transport()),
        "vidmatte poll, httpx default pool": framework(httpx.AsyncHTTPTransport(limits=limits)),
    }


async def layers(calls: int) -> list[str]:
    """Where a framework poll's CPU goes, layer by layer, with no network (in-process transport)."""
    import json

    import httpx
    from vidmatte_aigateway._parse import parse_job

    import vidmatte
    from benchmarks._canned_server import BODY
    from vidmatte import BackendContext, JobHandle, RateLimiter
    from vidmatte.contract import EventKind, JobEvent

    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"x-ratelimit-limit-requests", b"100000000"),
        (b"x-ratelimit-remaining-requests", b"99999999"),
        (b"x-ratelimit-reset-requests", b"1"),
    ]

    class Canned(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers=headers, content=BODY, request=request)

    base = "http://127.0.0.1:9"
    url = base + "/v1/jobs/job_0123456789abcdef0123"
    auth = {"Authorization": "Bearer sk-bench"}
    client = httpx.AsyncClient(transport=Canned(), base_url=base, follow_redirects=True)
    prebuilt = client.build_request("GET", url, headers=auth)
    plugins = vidmatte.load_plugins(environ={})
    settings = {"base_url": base, "media_url": base, "api_key": "sk-bench", "min_poll_interval": 0.0}
    context = BackendContext(settings=settings, env={}, transport=Canned(), limiter=RateLimiter(600.0))
    backend = plugins.backend_spec("aigateway").factory(context)
    handle = JobHandle("aigateway", "job_0123456789abcdef0123", time.time(), 30.0)
    record = json.loads(BODY)
    response = await client.send(prebuilt)
    event = JobEvent(EventKind.PROGRESS, "aigateway", "bench", handle=handle)

    async def transport_only() -> Any:
        return json.loads((await Canned().handle_async_request(prebuilt)).content)

    async def build() -> Any:
        return client.build_request("GET", url, headers=auth)

    async def send_prebuilt() -> Any:
        return (await client.send(prebuilt)).content

    async def httpx_get() -> Any:
        return json.loads((await client.send(client.build_request("GET", url, headers=auth))).content)

    async def parse() -> Any:
        return parse_job(record, handle, headers=response.headers, price_per_second=backend.settings.price_per_second)

    async def hook() -> Any:
        return plugins.hook.vidmatte_job_event(event=event)

    async def poll() -> Any:
        return await backend.poll(handle)

    rows = []
    for name, fn, owner in [
        ("httpx.Response built + json.loads (transport floor)", transport_only, "httpx"),
        ("AsyncClient.build_request", build, "httpx (URL merge/parse, headers)"),
        ("AsyncClient.send of a built request", send_prebuilt, "httpx (auth/redirect/cookie machinery)"),
        ("build_request + send + json.loads", httpx_get, "httpx"),
        ("parse_job (record -> JobSnapshot)", parse, "aigateway plugin"),
        ("vidmatte_job_event hook call", hook, "pluggy"),
        ("AigatewayBackend.poll, whole", poll, "aigateway + vidmatte.http.send"),
    ]:
        for _ in range(100):
            await fn()
        cpu0 = cpu_seconds()
        for _ in range(calls):
            await fn()
        rows.append([name, owner, (cpu_seconds() - cpu0) / calls * 1e6])
    await client.aclose()
    await backend.aclose()
    return [
        table(
            "B1 profile: CPU per call of each layer, no network (in-process transport), microseconds",
            ["layer", "whose code", "CPU us/call"],
            rows,
        )
    ]


async def run(base: str, total: int, rounds: int, profile: bool) -> list[str]:
    out: list[str] = []
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    async with AsyncExitStack() as stack:
        polls = await clients(stack, base)
        for _ in range(rounds):
            for in_flight in (1, 50):
                for name, poll in polls.items():
                    results.setdefault((name, in_flight), []).append(await measure(poll, total, in_flight))
        if profile:
            profiler = cProfile.Profile()
            poll = polls["vidmatte poll, default_transport()"]
            profiler.enable()
            await measure(poll, total, 50)
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
            out.append("\n### B1 profile: vidmatte poll at 50 in flight (cProfile, by own time)\n")
            out.append("```\n" + text.getvalue().strip() + "\n```")

    def figure(name: str, in_flight: int) -> tuple[float, float]:
        samples = results[(name, in_flight)]
        return median([s[0] for s in samples]), median([s[1] for s in samples])

    aio_1, aio_50 = figure("aiohttp (raw)", 1), figure("aiohttp (raw)", 50)
    hx_50 = figure("httpx default pool (raw)", 50)
    rows = []
    for name in polls:
        one, fifty = figure(name, 1), figure(name, 50)
        rows.append(
            [
                name,
                one[0],
                one[1],
                one[1] / aio_1[1],
                fifty[0],
                fifty[1],
                fifty[1] / aio_50[1],
                fifty[0] / hx_50[0],
            ]
        )
    out.insert(
        0,
        table(
            f"B1 request path: status polls (GET + JSON), {total} requests x {rounds} rounds, median",
            [
                "client",
                "1 in flight req/s",
                "CPU us/req",
                "CPU vs aiohttp",
                "50 in flight req/s",
                "CPU us/req",
                "CPU vs aiohttp",
                "req/s vs httpx default",
            ],
            rows,
        ),
    )
    ours_1, ours_50 = figure("vidmatte poll, default_transport()", 1), figure("vidmatte poll, default_transport()", 50)
    cpu_ratio = max(ours_1[1] / aio_1[1], ours_50[1] / aio_50[1])
    speedup = ours_50[0] / hx_50[0]
    alt = figure("vidmatte poll, httpx default pool", 50)
    out.insert(
        1,
        table(
            "B1 targets",
            ["target", "figure", "state"],
            [
                [
                    "framework CPU per poll <= 1.3x raw aiohttp (worse of 1 and 50 in flight)",
                    f"{cpu_ratio:.2f}x",
                    verdict(cpu_ratio <= 1.3),
                ],
                [
                    "framework req/s at 50 in flight >= 4x httpx default pool",
                    f"{speedup:.2f}x",
                    verdict(speedup >= 4.0),
                ],
                [
                    "default transport beats httpx's own pool inside the framework (50 in flight)",
                    f"{ours_50[0] / alt[0]:.2f}x req/s, {alt[1] / ours_50[1]:.2f}x less CPU",
                    verdict(ours_50[0] > alt[0]),
                ],
            ],
        ),
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds (CI smoke test)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the framework path")
    args = parser.parse_args(argv)
    total, rounds = (500, 1) if args.quick else (1500, 3)
    port = free_port()
    server = start_process(
        [PYTHON, str(ROOT / "benchmarks" / "_canned_server.py"), str(port)], ready="listening", cpu=1
    )
    try:
        note = pin(0)
        lines = asyncio.run(run(f"http://127.0.0.1:{port}", total, rounds, args.profile))
        lines += asyncio.run(layers(1000 if args.quick else 5000))
    finally:
        stop_process(server)
    print("\n".join(lines))
    print(f"\n(client {note}, server pinned to CPU 1 in its own process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

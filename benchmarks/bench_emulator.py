"""B2b, the scheduler on real sockets: 1,000 jobs against the AIgateway emulator.

The emulator (``benchmarks/_emulator_proc.py``) runs in its own process pinned
to CPU 1, with time scaled by 0.1 (a 60 s video takes ~6 s, the 3 s minimum
poll interval becomes 0.3 s) and the key's limit raised to 6,000 requests a
minute: the same problem as 600 a minute, ten times faster.  Each strategy
runs in a fresh client process pinned to CPU 0 (clean CPU and peak-RSS
figures), submits every job and waits for all of them:

* ``vidmatte`` - ``AigatewayBackend`` on the default transport, submits and
  polls sharing :class:`vidmatte.Scheduler`'s budget (nothing learned yet: cold);
* ``gateway SDK backoff`` - raw aiohttp, 0.2 s growing x1.5 to 3 s (2 s .. 30 s scaled);
* ``loop 0.1 s / 0.5 s / 1 s`` - raw aiohttp, one task per job at 0.01 / 0.05 / 0.1 s.

Baseline clients retry a 429'd submit after its Retry-After and treat a 429'd
poll as "not done yet".  Figures: polls per job (status requests, 304s and
429s included), 429s per job, detection delay p50/p95 (reported in model
seconds: real seconds / 0.1), client CPU per job and peak RSS growth per job
in flight.

    .venv/bin/python benchmarks/bench_emulator.py [--quick] [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    PYTHON,
    ROOT,
    cpu_seconds,
    free_port,
    percentile,
    start_process,
    stop_process,
    table,
    verdict,
)

SPEED = 0.1
RPM = 6000.0
KEY = "sk-aig-emulator"
STRATEGIES = ["vidmatte", "gateway SDK backoff", "loop 0.1 s", "loop 0.5 s", "loop 1 s"]


# -- the client process ---------------------------------------------------------------------


async def _submit_raw(session: Any, base: str, url: str) -> str:
    body = {"model": "prama-labs/ben-v2-video", "prompt": "remove the background", "video_url": url}
    headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": uuid.uuid4().hex}
    for _ in range(100_000):  # bounded: the run's own timeout ends it first
        async with session.post(base + "/v1/videos/generations", json=body, headers=headers) as response:
            if response.status == 429:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            return str((await response.json())["id"])
    raise RuntimeError("submit kept being rate limited")


async def _poll_raw(session: Any, base: str, job_id: str) -> bool:
    """True once the job is terminal (a 304 or a 429 says nothing new)."""
    async with session.get(f"{base}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}) as response:
        if response.status != 200:
            await response.read()
            return False
        record = await response.json()
        return record["status"] in {"completed", "failed", "cancelled"}


async def run_client(strategy: str, base: str, urls: dict[str, str], n: int, speed: float) -> dict[str, Any]:
    import aiohttp

    import vidmatte
    from vidmatte import BackendContext, MattingRequest, MediaInfo, Scheduler, Source

    rng = random.Random(11)
    choices = [rng.choice(sorted(urls, key=float)) for _ in range(n)]
    detected: dict[str, float] = {}
    # Set up (imports, plugins, the backend) before measuring: per-job figures only.
    scheduler = Scheduler()
    settings = {
        "base_url": base,
        "media_url": base,
        "api_key": KEY,
        "requests_per_minute": RPM,
        "min_poll_interval": 3.0 * speed,
    }
    spec = vidmatte.load_plugins(environ={}).backend_spec("aigateway")
    backend = spec.factory(BackendContext(settings=settings, env={}, limiter=scheduler.limiter_for("aigateway", RPM)))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    if strategy == "vidmatte":

        async def job(choice: str) -> None:
            media = MediaInfo(duration=float(choice), fps=1.0, frame_count=int(float(choice)), width=16, height=16)
            request = MattingRequest(Source(url=urls[choice]), media=media)
            handle = await backend.submit(request, idempotency_key=uuid.uuid4().hex)
            await scheduler.wait(backend, handle)
            detected[handle.job_id] = time.time()

        await asyncio.gather(*(job(c) for c in choices))
    else:

        async def job(choice: str) -> None:
            job_id = await _submit_raw(session, base, urls[choice])
            if strategy.startswith("gateway SDK"):
                delay = 2.0 * speed
                while True:
                    await asyncio.sleep(delay)
                    if await _poll_raw(session, base, job_id):
                        break
                    delay = min(30.0 * speed, delay * 1.5)
            else:
                interval = float(strategy.split()[1]) * speed
                while not await _poll_raw(session, base, job_id):  # noqa: ASYNC110 - the baseline's loop
                    await asyncio.sleep(interval)
            detected[job_id] = time.time()

        await asyncio.gather(*(job(c) for c in choices))
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await scheduler.aclose()
    await backend.aclose()
    await session.close()
    return {"detected": detected, "cpu": cpu, "wall": wall, "rss_kb": peak_rss - start_rss, "peak_rss_kb": peak_rss}


# -- the parent ---------------------------------------------------------------------------------


def _get(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(url: str) -> None:
    import urllib.request

    request = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass


def measure(strategy: str, base: str, urls: dict[str, str], n: int, speed: float, timeout: float) -> dict[str, Any]:
    _post(base + "/_emulator/reset")
    command = [
        "taskset",
        "-c",
        "0",
        PYTHON,
        str(Path(__file__).resolve()),
        "--client",
        strategy,
        "--base",
        base,
        "--urls",
        json.dumps(urls),
        "--jobs",
        str(n),
        "--speed",
        str(speed),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=True)
    except subprocess.TimeoutExpired:
        return {"strategy": strategy, "timed_out": True}
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{strategy} client failed: {exc.stderr[-3000:]}") from None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    stats = _get(base + "/_emulator/stats")
    finished = _get(base + "/_bench/done")
    delays = [(t - finished[j]) / speed for j, t in result["detected"].items() if j in finished]
    requests = stats["requests"]
    return {
        "strategy": strategy,
        "polls": requests.get("poll", 0) / n,
        "submits": requests.get("submit", 0) / n,
        "rate_limited": stats["rate_limited"] / n,
        "not_modified": stats["not_modified"] / n,
        "p50": percentile(delays, 0.5),
        "p95": percentile(delays, 0.95),
        "cpu_ms": result["cpu"] / n * 1000,
        "rss_kb": result["rss_kb"] / n,
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
        "wall": result["wall"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 jobs at time x0.05, vidmatte and the SDK only")
    parser.add_argument("--speed", type=float, default=None, help="time scale (default 0.1)")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--strategies", nargs="*", default=None)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        result = asyncio.run(run_client(args.client, args.base, json.loads(args.urls), args.jobs, args.speed))
        print(json.dumps(result))
        return 0
    n = args.jobs or (100 if args.quick else 1000)
    speed = args.speed or (0.05 if args.quick else SPEED)
    strategies = args.strategies or (STRATEGIES[:2] if args.quick else STRATEGIES)
    port = free_port()
    emulator = start_process(
        [PYTHON, str(ROOT / "benchmarks" / "_emulator_proc.py"), str(port), str(speed), str(RPM)], ready="ready", cpu=1
    )
    try:
        assert emulator.stdout is not None
        urls = json.loads(emulator.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        results = []
        for strategy in strategies:
            results.append(measure(strategy, base, urls, n, speed, timeout=240))
            print(
                f"  ... {strategy}, {n} jobs: {results[-1].get('wall', float('nan')):.1f} s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        stop_process(emulator)
    sdk = next((r for r in results if r["strategy"] == "gateway SDK backoff" and "polls" in r), None)
    rows = []
    for r in results:
        if r.get("timed_out"):
            rows.append([r["strategy"], "did not finish in 240 s"] + ["-"] * 10)
            continue
        rows.append(
            [
                r["strategy"],
                r["polls"],
                r["polls"] / sdk["polls"] if sdk else float("nan"),
                r["rate_limited"],
                r["not_modified"],
                r["p50"],
                r["p95"],
                r["p95"] / sdk["p95"] if sdk else float("nan"),
                r["cpu_ms"],
                r["cpu_ms"] / sdk["cpu_ms"] if sdk else float("nan"),
                r["rss_kb"],
                r["wall"],
            ]
        )
    print(
        table(
            f"B2b scheduler on real sockets: {n:,} jobs vs the AIgateway emulator ({RPM:.0f}/min, time x{speed})",
            [
                "strategy",
                "polls/job",
                "vs SDK",
                "429s/job",
                "304s/job",
                "delay p50 s*",
                "delay p95 s*",
                "p95 vs SDK",
                "client CPU ms/job",
                "CPU vs SDK",
                "peak RSS KB/job",
                "wall s",
            ],
            rows,
        )
    )
    print(f"\n(* model seconds: real seconds / {speed}; client pinned to CPU 0, emulator to CPU 1)")
    ours = next((r for r in results if r["strategy"] == "vidmatte" and "polls" in r), None)
    if ours and sdk:
        print(
            table(
                f"B2b targets, {n:,} jobs",
                ["target", "figure", "state"],
                [
                    ["zero 429s", f"{ours['rate_limited'] * n:.0f}", verdict(ours["rate_limited"] == 0)],
                    [
                        "polls/job <= 1/3 of the SDK's at equal or better p95",
                        f"{ours['polls'] / sdk['polls']:.3f}x polls, p95 {ours['p95']:.1f} s vs {sdk['p95']:.1f} s",
                        verdict(ours["polls"] <= sdk["polls"] / 3 and ours["p95"] <= sdk["p95"]),
                    ],
                ],
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

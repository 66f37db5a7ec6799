"""Frame fan-out benchmark: the prama backend against its emulator, and the frame-economy trade-off.

Part 1 - throughput.  The emulator runs in its own process (so its CPU is not
counted as the client's) with 150 ms latency per request and a limit of 20
requests a second per key (429 + Retry-After beyond it).  Measured in the same
run, each on 640x360 frames:

* ``official sample``: Prama's official Python sample's approach - one request
  at a time, frame squashed to 1024x1024, JPEG q85, mask scaled back (no retry);
* ``PramaMatter``: our frame matter, every frame submitted at once, paced by
  its token bucket (``requests_per_second=20``, ``concurrency=8``);
* ``pipeline``: the whole backend (decode -> fan-out -> smoothing/refinement ->
  ProRes 4444 encode) on a clip, through ``vidmatte.frames``.

Reported: frames/s, as a fraction of the 20/s limit (target >= 90% sustained,
zero 429s), 429s received, client CPU ms per frame, and the ratio to the
official sample's frames/s.

Part 2 - frame economy.  The sample clip (a person sliding over stripes)
through the pipeline with ``frame_step`` and ``change_threshold`` plans,
against the emulator without limits (masks from the local engine when
installed, else synthetic): calls made and saved, and how far the resulting
alpha is from sending every frame (mean absolute difference in % of full
scale, worst frame, and IoU of the alpha > 50% region).

    .venv/bin/python benchmarks/bench_fanout.py            # full (~1.5 minutes)
    .venv/bin/python benchmarks/bench_fanout.py --quick    # smaller runs (~30 s)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image

LIMIT = 20.0
LATENCY = 0.15


@contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """``python -m vidmatte_prama.emulator`` in a subprocess; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vidmatte_prama.emulator", "--port", "0", "--any-key", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "prama emulator on" not in line:
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield line.split()[3]
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def stats(base_url: str, key: str) -> dict[str, Any]:
    """The emulator's counters for ``key``."""
    from vidmatte_prama.emulator import key_label

    body: dict[str, Any] = httpx.get(base_url + "/_emulator/stats", timeout=10).json()
    counters: dict[str, Any] = body.get(key_label(key), {"calls": 0, "masks": 0, "statuses": {}})
    return counters


def make_frames(count: int, size: tuple[int, int] = (640, 360)) -> list[NDArray[np.uint8]]:
    """Frames with a moving subject (distinct content, like a real clip)."""
    width, height = size
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 30, np.uint8)
        x = (index * 7) % (width - 120)
        frame[100:300, x : x + 120] = (220, 200, 180)
        frames.append(frame)
    return frames


def official_sample(base_url: str, frames: list[NDArray[np.uint8]], key: str) -> tuple[float, float]:
    """One request at a time, as Prama's sample does; returns (seconds, CPU seconds)."""
    start, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(base_url=base_url, headers={"x-api-key": key}, timeout=60) as client:
        for frame in frames:
            height, width = frame.shape[:2]
            image = Image.fromarray(frame).resize((1024, 1024))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=85)
            response = client.post(
                "/v2", files={"image_file": ("frame.jpg", buffer.getvalue(), "image/jpeg")}, data={"channels": "alpha"}
            )
            if response.status_code != 200:
                continue  # the sample returns None on any error
            Image.open(io.BytesIO(response.content)).convert("L").resize((width, height))
    return time.perf_counter() - start, time.process_time() - cpu


def ours(base_url: str, frames: list[NDArray[np.uint8]], key: str) -> tuple[float, float]:
    """Every frame through :class:`PramaMatter` at once; it paces itself.  (seconds, CPU seconds)."""
    from vidmatte_prama import PramaMatter, PramaSettings

    async def main() -> tuple[float, float]:
        settings = PramaSettings(api_key=key, base_url=base_url, requests_per_second=LIMIT, concurrency=8)
        matter = PramaMatter(settings)
        try:
            await matter.matte(frames[:1])  # connection and first-use warm-up, outside the measurement
            start, cpu = time.perf_counter(), time.process_time()
            masks = await asyncio.gather(*(matter.matte([frame]) for frame in frames))
            assert all(m[0].shape == frames[0].shape[:2] for m in masks)
            return time.perf_counter() - start, time.process_time() - cpu
        finally:
            await matter.aclose()

    return asyncio.run(main())


def run_pipeline(
    base_url: str, clip: Path, dest: Path, key: str, options: dict[str, Any], cache: Path, *, rps: float | None
) -> tuple[float, float, Any]:
    """The prama backend on ``clip`` through the frame pipeline.  (seconds, CPU seconds, final snapshot)."""
    from vidmatte_prama.plugin import create_backend

    from vidmatte import BackendContext, MattingRequest, OutputSpec, Source, format_for_path

    async def main() -> tuple[float, float, Any]:
        settings: dict[str, Any] = {"base_url": base_url, "requests_per_second": rps, "concurrency": 8}
        context = BackendContext(settings=settings, env={"PRAMA_API_KEY": key}, cache_dir=cache)
        backend = create_backend(context)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            output = OutputSpec(format=format_for_path(dest), keep_audio=False)
            handle = await backend.submit(MattingRequest(Source(path=str(clip)), output, options), idempotency_key=key)
            for _ in range(100_000):
                snapshot = await backend.poll(handle)
                if snapshot.state.is_terminal:
                    break
                await asyncio.sleep(0.02)
            if snapshot.state.value != "succeeded":
                raise RuntimeError(f"job {snapshot.state.value}: {snapshot.error}")
            artefact = snapshot.artefact()
            assert artefact is not None
            await backend.download(handle, artefact, dest)
            return time.perf_counter() - start, time.process_time() - cpu, snapshot
        finally:
            await backend.aclose()

    return asyncio.run(main())


def make_clip(path: Path, frames: list[NDArray[np.uint8]], fps: int = 25) -> Path:
    """Encode ``frames`` as H.264."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def throughput(work: Path, quick: bool) -> None:
    """Part 1."""
    n_ours, n_sample, n_pipeline = (80, 16, 80) if quick else (400, 40, 300)
    frames = make_frames(max(n_ours, n_sample))
    clip = make_clip(work / "fanout.mp4", make_frames(n_pipeline, (320, 180)))
    print(f"part 1: emulator latency {LATENCY * 1000:.0f} ms, limit {LIMIT:.0f} requests/s per key; 640x360 frames")
    rows = []
    with emulator_process("--latency", str(LATENCY), "--rps", str(LIMIT), "--masks", "synthetic") as url:
        runs: tuple[tuple[str, int, Callable[[str, int], tuple[float, float]]], ...] = (
            ("official sample (1 at a time)", n_sample, lambda key, n: official_sample(url, frames[:n], key)),
            ("PramaMatter (token bucket)", n_ours, lambda key, n: ours(url, frames[:n], key)),
            (
                "pipeline, 320x180 -> ProRes",
                n_pipeline,
                lambda key, n: run_pipeline(url, clip, work / "fanout.mov", key, {}, work / "cache", rps=LIMIT)[:2],
            ),
        )
        for name, count, run in runs:
            key = f"bench-{name.split()[0]}-{time.time_ns()}"
            seconds, cpu = run(key, count)
            counters = stats(url, key)
            rejected = counters["statuses"].get("429", 0)
            rows.append((name, count, count / seconds, cpu * 1000 / count, rejected))
    baseline = rows[0][2]
    ceiling = 1 / LATENCY
    print(f"(one request at a time cannot pass 1/latency = {ceiling:.1f} frames/s, {ceiling / LIMIT:.0%} of the limit)")
    print(
        f"{'client':<32}{'frames':>7}{'frames/s':>10}{'of limit':>10}{'vs sample':>11}{'429s':>6}{'CPU ms/frame':>14}"
    )
    for name, count, fps, cpu_ms, rejected in rows:
        print(
            f"{name:<32}{count:>7}{fps:>10.2f}{fps / LIMIT:>9.0%}{fps / baseline:>10.1f}x{rejected:>6}{cpu_ms:>14.2f}"
        )


def _alphas(path: Path) -> list[NDArray[np.float64]]:
    from vidmatte.media import read_frames_rgba

    return [frame[..., 3].astype(float) for frame in read_frames_rgba(path)]


def economy(work: Path, quick: bool) -> None:
    """Part 2."""
    from vidmatte.media import make_sample_clip

    seconds = 2.0 if quick else 4.0
    clip = make_sample_clip(work / "sample.mp4", seconds=seconds, size=(320, 180), audio=False)
    plans: list[tuple[str, dict[str, Any]]] = [
        ("every frame", {}),
        ("frame_step=2", {"frame_step": 2}),
        ("frame_step=3", {"frame_step": 3}),
        ("frame_step=5", {"frame_step": 5}),
        ("change_threshold=0.02", {"change_threshold": 0.02}),
        ("change_threshold=0.05", {"change_threshold": 0.05}),
    ]
    if quick:
        plans = [plans[0], plans[1], plans[3], plans[5]]
    with emulator_process("--masks", "auto") as url:
        masks = httpx.get(url + "/v2/health", timeout=10).json()["masks"]
        print(f"\npart 2: frame economy on the sample clip ({seconds:.0f} s, 25 fps, 320x180), masks: {masks}")
        reference: list[NDArray[np.float64]] = []
        print(f"{'plan':<24}{'calls':>6}{'saved':>8}{'mean |diff|':>13}{'worst frame':>13}{'IoU':>7}")
        for name, options in plans:
            key = f"economy-{len(reference)}-{time.time_ns()}"
            dest = work / f"economy-{key}"
            run_pipeline(url, clip, dest, key, options, work / "cache", rps=None)
            calls = stats(url, key)["masks"]
            alphas = _alphas(dest)
            if not reference:
                reference, total = alphas, calls
            diffs = [float(np.abs(a - r).mean()) / 255 for a, r in zip(alphas, reference, strict=True)]
            union = sum(float(((a > 127) | (r > 127)).sum()) for a, r in zip(alphas, reference, strict=True))
            inter = sum(float(((a > 127) & (r > 127)).sum()) for a, r in zip(alphas, reference, strict=True))
            iou = inter / union if union else 1.0
            print(f"{name:<24}{calls:>6}{1 - calls / total:>8.0%}{np.mean(diffs):>12.2%}{max(diffs):>13.2%}{iou:>7.3f}")


def main(argv: list[str] | None = None) -> None:
    """Run both parts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 30 s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        work = Path(folder)
        throughput(work, args.quick)
        economy(work, args.quick)


if __name__ == "__main__":
    main()

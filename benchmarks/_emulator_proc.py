"""The AIgateway emulator tuned for scheduler benchmarks (run as a separate, pinned process).

    python benchmarks/_emulator_proc.py PORT SPEED RPM

Time is scaled by ``SPEED`` (0.1: a 60 s video takes about 6 s, the minimum
poll interval is 0.3 s); the key's limit is ``RPM``.  Jobs wait
``5.5 * SPEED`` s in the queue and process ``SPEED`` s per video second
+-50%.  Matting is replaced by copying one tiny pre-rendered WebM (the
benchmark measures the client, not the engine), so the emulator keeps up
with thousands of jobs.  Inputs are tiny 1 fps videos of 5..120 s, uploaded
at start; their URLs are printed as JSON on the line after "ready".
``GET /_bench/done`` answers each job's completion time (epoch seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from vidmatte_aigateway.emulator import EMULATOR_KEY, Account, Emulator, EmulatorConfig
from vidmatte_aigateway.emulator._media import matte_synthetic

DURATIONS = (5, 15, 30, 45, 60, 75, 90, 105, 120)


def tiny_video(path: Path, seconds: int) -> None:
    """A 16x16, 1 fps H.264 clip of ``seconds`` seconds."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[4:12, 4:12] = 200
        for i in range(seconds):
            video = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video.pts = i
            for packet in stream.encode(video):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


class BenchEmulator(Emulator):
    """The emulator with matting replaced by a copy and completion times recorded."""

    def __init__(self, config: EmulatorConfig, template: Path) -> None:
        super().__init__(config)
        self._template = template
        self.done: dict[str, float] = {}

    async def _matte(self, source: Path, output: Path) -> None:
        shutil.copyfile(self._template, output)

    async def _process(self, job: Any, origin: str) -> None:
        await super()._process(job, origin)
        if job.status == "completed":
            self.done[job.id] = time.time()

    def app(self) -> web.Application:
        app = super().app()

        async def done(request: web.Request) -> web.Response:
            return web.json_response(self.done)

        app.router.add_get("/_bench/done", done)
        return app


async def main(port: int, speed: float, rpm: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vidmatte-bench-"))
    clips = {}
    for seconds in DURATIONS:
        clips[seconds] = folder / f"clip{seconds}.mp4"
        tiny_video(clips[seconds], seconds)
    template = folder / "template.webm"
    matte_synthetic(clips[5], template)
    config = EmulatorConfig(
        speed_factor=speed,
        queue_seconds=5.5,
        noise=0.5,
        engine="synthetic",
        min_poll_interval=3.0 * speed,
        accounts={EMULATOR_KEY: Account(requests_per_minute=rpm)},
    )
    emulator = BenchEmulator(config, template)
    base = await emulator.start(port=port)
    urls = {}
    for seconds, path in clips.items():
        upload_id = f"clip{seconds}"
        emulator._uploads[upload_id] = path
        urls[seconds] = f"{base}/_emulator/uploads/{upload_id}/{path.name}"
    print("ready", flush=True)
    print(json.dumps(urls), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))

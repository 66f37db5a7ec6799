"""Media benchmark: the local backend end to end, per output format, against a sequential loop.

For 640x360 and 1920x1080 and each output format it reports frames per second
of the full pipeline (decode -> MediaPipe -> smoothing/refinement -> compose ->
encode, with audio) and of a plain sequential loop doing the same work one
frame at a time, measured in the same run, and their ratio.  Then the peak
memory (RSS) of a job on a 10 s clip and on a 10 min clip (each in its own
subprocess): it must be flat.

    .venv/bin/python benchmarks/bench_media.py            # full (several minutes)
    .venv/bin/python benchmarks/bench_media.py --quick    # 640x360 only, 60 s long clip

Targets on a 2-core machine: >= 100 fps at 640x360 to WebM with alpha, >= 1.5x
the sequential loop; the long clip's peak RSS within 10% of the short one's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

FORMATS = ["webm", "mov", "mp4", "matte", "png", "zip"]
SUFFIX = {"webm": ".webm", "mov": ".mov", "mp4": ".mp4", "matte": ".mp4", "png": "", "zip": ".zip"}


def output_spec(fmt: str) -> Any:
    from vidmatte import OutputFormat
    from vidmatte.media import resolve_output

    return resolve_output(OutputFormat(fmt))


def loop_clip(src: Path, dest: Path, times: int) -> Path:
    """``src`` repeated ``times`` times by stream copy (fast: no re-encoding)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dest), "w", format="mp4") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        duration = float(inp.duration or 0) / 1_000_000
        for loop in range(times):
            inp.seek(0)
            for packet in inp.demux():
                if packet.dts is None or packet.stream.index not in streams:
                    continue
                shift = round(loop * duration / packet.time_base)
                packet.pts = packet.pts + shift if packet.pts is not None else None
                packet.dts += shift
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dest


def run_pipeline(clip: Path, fmt: str, out_dir: Path) -> tuple[int, float, float]:
    """(frames, wall seconds, CPU seconds) for one local-backend job, submit to output downloaded."""
    import vidmatte

    spec = vidmatte.load_plugins().backend_spec("local")
    backend = spec.factory(vidmatte.BackendContext(cache_dir=out_dir / "cache"))
    request = vidmatte.MattingRequest(vidmatte.Source(path=str(clip)), output_spec(fmt))

    async def main() -> tuple[int, float, float]:
        # Load the model before timing: a fixed cost, not throughput.
        warm = backend._person_backend().matter  # type: ignore[attr-defined]
        import numpy as np

        await warm.matte([np.zeros((144, 256, 3), np.uint8)])
        started, cpu = time.perf_counter(), time.process_time()
        handle = await backend.submit(request, idempotency_key=uuid.uuid4().hex)
        while not (snapshot := await backend.poll(handle)).state.is_terminal:  # noqa: ASYNC110 - polling is the contract
            await asyncio.sleep(0.01)
        if snapshot.error is not None:
            raise RuntimeError(snapshot.error.message)
        await backend.download(handle, snapshot.artefacts[0], out_dir / f"pipeline{SUFFIX[fmt]}")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await backend.aclose()
        frames = int(handle.data.get("frames", "0"))
        return frames, elapsed, cpu

    return asyncio.run(main())


def run_sequential(clip: Path, fmt: str, out_dir: Path) -> tuple[int, float, float]:
    """The baseline: decode, segment, upscale, encode, one frame at a time, one thread of Python."""
    import av
    import numpy as np
    from mediapipe.python.solutions import selfie_segmentation

    from vidmatte.media import open_writer

    model = selfie_segmentation.SelfieSegmentation(model_selection=1)
    model.process(np.zeros((144, 256, 3), np.uint8))
    started, cpu = time.perf_counter(), time.process_time()
    frames = 0
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        fps = stream.average_rate
        writer = open_writer(
            out_dir / f"sequential{SUFFIX[fmt]}",
            output_spec(fmt),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=fps,
            audio_from=clip,
        )
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            small = frame.reformat(width=256, height=144, format="rgb24").to_ndarray()
            probability = model.process(small).segmentation_mask
            mask = av.VideoFrame.from_ndarray((probability * 255).astype(np.uint8), format="gray")
            alpha = mask.reformat(width=frame.width, height=frame.height).to_ndarray()
            writer.write(rgb, alpha)
            frames += 1
        writer.close()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    model.close()
    return frames, elapsed, cpu


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    ``VmHWM`` on Linux: ``ru_maxrss`` survives ``exec`` there, so a child forked from
    a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(clip: Path) -> dict[str, float]:
    """Peak RSS (MiB) of one WebM job on ``clip``, in a fresh subprocess."""
    code = (
        "import sys, json, pathlib, tempfile; sys.path.insert(0, 'benchmarks');"
        "import bench_media as b;"
        "d = pathlib.Path(tempfile.mkdtemp());"
        "n, s, c = b.run_pipeline(pathlib.Path(sys.argv[1]), 'webm', d);"
        "print(json.dumps({'frames': n, 'seconds': s, 'peak_mib': b.peak_rss_mib()}))"
    )
    env = {**os.environ, "VIDMATTE_PLUGINS": "local", "GLOG_minloglevel": "2"}
    done = subprocess.run([sys.executable, "-c", code, str(clip)], capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="640x360 only, 4 s clips, a 60 s long clip")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("VIDMATTE_PLUGINS", "local")

    from vidmatte.media import make_sample_clip

    work = Path(tempfile.mkdtemp(prefix="vidmatte-bench-"))
    # (size, clip seconds): 1080p clips are shorter, ProRes at 1080p runs at a few fps.
    sizes = [((640, 360), 4)] if args.quick else [((640, 360), 8), ((1920, 1080), 3)]
    formats = args.formats.split(",")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; 25 fps clips; work in {work}")
    print("fps = frames per wall-clock second; cpu = process CPU ms per frame (all threads)")
    print(
        f"{'size':>10} {'format':>6} {'pipeline fps':>13} {'sequential fps':>15} {'ratio':>6}"
        f" {'pipeline cpu':>13} {'sequential cpu':>15}"
    )
    for (width, height), seconds in [] if args.memory_only else sizes:
        clip = make_sample_clip(work / f"clip-{width}x{height}.mp4", seconds=seconds, size=(width, height))
        for fmt in formats:
            out = work / f"{width}-{fmt}"
            out.mkdir()
            frames, pipe_s, pipe_cpu = run_pipeline(clip, fmt, out)
            seq_frames, seq_s, seq_cpu = run_sequential(clip, fmt, out)
            assert frames == seq_frames, (frames, seq_frames)
            pipe_fps, seq_fps = frames / pipe_s, seq_frames / seq_s
            print(
                f"{width}x{height:<5} {fmt:>6} {pipe_fps:13.1f} {seq_fps:15.1f} {pipe_fps / seq_fps:5.2f}x"
                f" {pipe_cpu / frames * 1000:10.1f} ms {seq_cpu / frames * 1000:12.1f} ms",
                flush=True,
            )
    if args.no_memory:
        return
    base = make_sample_clip(work / "ten-seconds.mp4", seconds=10, size=(640, 360))
    long_seconds = 60 if args.quick else 600
    long = loop_clip(base, work / "long.mp4", long_seconds // 10)
    short_run = measure_memory(base)
    long_run = measure_memory(long)
    growth = long_run["peak_mib"] / short_run["peak_mib"] - 1
    print(
        f"peak RSS, WebM job at 640x360: 10 s clip {short_run['peak_mib']:.0f} MiB "
        f"({short_run['frames']:.0f} frames, {short_run['frames'] / short_run['seconds']:.0f} fps); "
        f"{long_seconds} s clip {long_run['peak_mib']:.0f} MiB "
        f"({long_run['frames']:.0f} frames, {long_run['frames'] / long_run['seconds']:.0f} fps); growth {growth:+.1%}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

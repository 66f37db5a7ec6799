"""Run every benchmark: ``python -m benchmarks [--quick] [--only B1 B2a ...]``.

Each benchmark runs in its own process (clean CPU and memory figures) and
prints its own tables, figures with their ratio against baselines measured
in the same run.  ``--quick`` is the CI smoke test; the full run takes at most
15 minutes on a 2-core machine.

    B1   benchmarks/bench_request.py    request path (framework vs raw aiohttp/httpx)
    B2a  benchmarks/bench_scheduler.py  scheduler on virtual time (1,000 and 10,000 jobs)
    B2b  benchmarks/bench_emulator.py   scheduler on real sockets vs the AIgateway emulator
    B3   benchmarks/bench_fanout.py     frame fan-out vs the Prama emulator
    B4   benchmarks/bench_media.py      media pipeline per format, peak RSS
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "B1": "bench_request.py",
    "B2a": "bench_scheduler.py",
    "B2b": "bench_emulator.py",
    "B3": "bench_fanout.py",
    "B4": "bench_media.py",
}


def machine() -> str:
    """nproc, CPU model and Python of this machine."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load:.2f} at start"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke test (under a minute or so per benchmark)")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    print(f"# vidmatte benchmarks ({'quick' if args.quick else 'full'})\n\nMachine: {machine()}\n", flush=True)
    failures = []
    started = time.monotonic()
    for name in chosen:
        script = HERE / BENCHMARKS[name]
        print(f"\n## {name}: {script.name}\n", flush=True)
        if not script.exists():
            print(f"(missing: {script.name} is not written yet)", flush=True)
            failures.append(name)
            continue
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        began = time.monotonic()
        code = subprocess.call(command, cwd=HERE.parent)
        print(f"\n({name} took {time.monotonic() - began:.0f} s, exit status {code})", flush=True)
        if code != 0:
            failures.append(name)
    print(f"\nAll benchmarks took {time.monotonic() - started:.0f} s.", flush=True)
    if failures:
        print(f"Failed or missing: {', '.join(failures)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

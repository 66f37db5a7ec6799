"""Helpers of the journal's end-to-end tests: tiny clips, emulators in their own processes, the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

PYTHON = sys.executable


def make_clip(path: Path, index: int, *, frames: int = 5, fps: int = 5, size: tuple[int, int] = (64, 48)) -> Path:
    """A tiny H.264 clip whose content depends on ``index`` (a bright square moving on a tinted field)."""
    import av

    width, height = size
    rng = np.random.default_rng(index)
    tint = rng.integers(20, 120, size=3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = tint
            x = 8 + (i * 6 + index) % (width - 24)
            image[12:36, x : x + 16] = (230, 200, 170)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@contextmanager
def emulator_process(module: str, *args: str) -> Iterator[str]:
    """``python -m MODULE ARGS`` in its own process (it survives the client's kills); yields its base URL."""
    process = subprocess.Popen(
        [PYTHON, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = next((word for word in line.split() if word.startswith("http://127.0.0.1:")), None)
        if url is None:
            process.kill()
            _, err = process.communicate(timeout=10)
            raise RuntimeError(f"{module} did not start: {line!r} {err[-2000:]}")
        yield url.rstrip("/;,")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def get_json(url: str) -> Any:
    """GET ``url`` and parse its JSON (loopback only)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_json(url: str, body: Any) -> Any:
    """POST JSON to ``url`` (loopback only)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def journal_events(path: Path) -> int:
    """How many events the journal at ``path`` holds (read while another process writes it)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


def vidmatte(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    kill_after: float | None = None,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 120,
) -> tuple[int | None, str, str]:
    """Run the CLI.  With ``kill_after`` (seconds) or ``kill_when`` (a condition checked every 5 ms),
    SIGKILL it then; the code is ``None`` when it was killed."""
    process = subprocess.Popen(
        [PYTHON, "-m", "vidmatte", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        cwd=cwd,
    )
    if kill_after is not None or kill_when is not None:
        deadline = time.monotonic() + (kill_after if kill_after is not None else timeout)
        while time.monotonic() < deadline and process.poll() is None:
            if kill_when is not None and kill_when():
                break
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            out, err = process.communicate(timeout=30)
            return None, out, err
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"vidmatte {' '.join(args)} took over {timeout} s:\n{out}\n{err}") from None
    return process.returncode, out, err

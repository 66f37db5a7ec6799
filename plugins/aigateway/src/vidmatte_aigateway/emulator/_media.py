"""Real outputs for the emulator: the local engine when installed, else a synthetic matte.

The synthetic matte is deterministic: each frame's background colour is taken
as the median of its border, pixels far from it are foreground, and the edge
is softened by a 3x3 box filter.  On test clips (a shape moving over a flat
background) that is a meaningful matte; on real footage it is a rough key.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vidmatte import (
    BackendContext,
    JobState,
    MattingBackend,
    MattingRequest,
    OutputFormat,
    OutputSpec,
    Source,
    load_plugins,
)

__all__ = ["local_backend", "local_engine_available", "matte_local", "matte_synthetic", "probe_duration"]

_log = logging.getLogger("vidmatte.aigateway.emulator")

_THRESHOLD = 48.0
"""Distance (max over RGB channels) from the background colour at which a pixel is foreground."""


def probe_duration(path: Path) -> float:
    """Seconds of video in ``path``; raises ``ValueError`` when it is not a readable video."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("the input has no video stream")
            if container.duration is not None:
                return float(container.duration) / 1_000_000
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            rate = float(stream.average_rate or 25)
            return frames / rate
    except av.error.FFmpegError as exc:
        raise ValueError(f"the input is not a readable video ({type(exc).__name__})") from None


def _alpha(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    background = np.median(border, axis=0)
    distance = np.abs(rgb.astype(np.int16) - background).max(axis=2).astype(np.float32)
    hard = np.clip((distance - _THRESHOLD / 2) * (255.0 / _THRESHOLD), 0, 255)
    padded = np.pad(hard, 1, mode="edge")
    soft = sum(padded[dy : dy + hard.shape[0], dx : dx + hard.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
    return np.asarray(soft, dtype=np.float32).round().astype(np.uint8)


def matte_synthetic(source: Path, dest: Path) -> None:
    """Write an RGBA WebM (VP9, ``yuva420p``) of ``source`` with the synthetic matte as alpha."""
    import av

    with av.open(str(source)) as inp:
        stream = inp.streams.video[0]
        rate = stream.average_rate or 25
        width, height = stream.codec_context.width // 2 * 2, stream.codec_context.height // 2 * 2
        tmp = dest.with_suffix(".part.webm")
        with av.open(str(tmp), "w", format="webm") as out:
            vout = out.add_stream("libvpx-vp9", rate=rate)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuva420p"
            vout.options = {"deadline": "realtime", "cpu-used": "8", "auto-alt-ref": "0", "lag-in-frames": "0"}
            for frame in inp.decode(stream):
                rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)[:height, :width]
                rgba = np.ascontiguousarray(np.dstack([rgb, _alpha(rgb)]), dtype=np.uint8)
                for packet in vout.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")):
                    out.mux(packet)
            for packet in vout.encode():
                out.mux(packet)
    os.replace(tmp, dest)


def local_engine_available() -> bool:
    """True when a ``local`` vidmatte backend is installed (found through the public plugin API)."""
    try:
        return "local" in load_plugins().backends
    except Exception:  # noqa: BLE001 - a broken plugin set means "not available", never a crash
        return False


def local_backend(cache_dir: Path) -> MattingBackend:
    """The installed ``local`` backend, built from its registered spec (public API only)."""
    spec = load_plugins().backend_spec("local")
    return spec.factory(BackendContext(env=dict(os.environ), cache_dir=cache_dir))


async def matte_local(backend: MattingBackend, source: Path, dest: Path, *, timeout: float = 600.0) -> None:
    """Matte ``source`` into an RGBA WebM at ``dest`` with the ``local`` backend.

    Driven through the :class:`vidmatte.MattingBackend` contract, like any client would.
    """
    request = MattingRequest(Source(path=str(source)), OutputSpec(format=OutputFormat.WEBM, keep_audio=False))
    handle = await backend.submit(request, idempotency_key=f"emulator-{dest.parent.name}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        snapshot = await backend.poll(handle)
        if snapshot.state.is_terminal:
            break
        if loop.time() > deadline:
            await backend.cancel(handle)
            raise TimeoutError("the local engine took too long")
        await asyncio.sleep(max(0.05, min(1.0, snapshot.poll_after or 0.1)))
    if snapshot.state is not JobState.SUCCEEDED:
        message = snapshot.error.message if snapshot.error else snapshot.state.value
        raise RuntimeError(f"the local engine failed: {message}")
    artefact = snapshot.artefact()
    if artefact is None:
        raise RuntimeError("the local engine returned no artefact")
    await backend.download(handle, artefact, dest)

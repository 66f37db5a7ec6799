"""Record replay scenarios: every HTTP exchange of each scenario, saved as JSON.

Against the emulator (the default; what ships in ``vidmatte_aigateway/scenarios``)::

    python -m vidmatte_aigateway.record                 # all scenarios, into the package
    python -m vidmatte_aigateway.record --only auth_401 --out /tmp/scenarios

Against the live gateway, so protocol drift shows up as a diff against the
emulator's recordings (needs a key and a reachable input video; costs money)::

    AIGATEWAY_API_KEY=sk-aig-... python -m vidmatte_aigateway.record --live \\
        --input-url https://example.com/clip.mp4 --duration 2.0 --out /tmp/live

Live runs only the scenarios marked ``live`` (happy path, 401, 404).  The key
never reaches the files: ``Authorization`` is recorded as ``Bearer ***`` and
every body is scrubbed.  Volatile values (job ids, signatures, expiry stamps,
upload ids) are renamed to stable placeholders so two recordings diff cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from vidmatte import BackendContext
from vidmatte.errors import redact
from vidmatte_aigateway._backend import AigatewayBackend
from vidmatte_aigateway._scenarios import SCENARIOS, ScenarioSpec, run_steps
from vidmatte_aigateway._settings import API_KEY_ENV, DEFAULT_BASE_URL, DEFAULT_MEDIA_URL, load_settings

__all__ = ["SCENARIO_DIR", "Normalizer", "RecordingTransport", "main", "record_emulator", "record_live"]

SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""Where the shipped recordings live."""

UPLOAD_HOST = "https://uploads.example.test"
"""Stands in for the uploader's host in recordings."""

_KEEP_RESPONSE_HEADERS = (
    "content-type",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-cost-cents",
    "location",
)
_KEEP_REQUEST_HEADERS = ("authorization", "idempotency-key", "x-aig-tag", "content-type")


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forwards to ``inner`` and keeps each exchange (a dropped or cut-short answer included)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        entry: dict[str, Any] = {
            "request": {
                "method": request.method,
                "url": str(request.url),
                "headers": {k: v for k, v in request.headers.items() if k.lower() in _KEEP_REQUEST_HEADERS},
                "body": body.decode("utf-8", "replace") if body else None,
            }
        }
        self.exchanges.append(entry)
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            entry["error"] = type(exc).__name__
            raise
        chunks: list[bytes] = []
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
        except httpx.TransportError as exc:
            entry["truncated_by"] = type(exc).__name__
        finally:
            await response.aclose()
        content = b"".join(chunks)
        headers = {k.lower(): v for k, v in response.headers.items()}
        kept = {k: v for k, v in headers.items() if k in _KEEP_RESPONSE_HEADERS}
        if "truncated_by" in entry and "content-length" in headers:
            kept["content-length"] = headers["content-length"]
        entry["response"] = {"status": response.status_code, "headers": kept, **_encode_body(content, headers)}
        # The client gets exactly what came: for a cut-short answer, fewer bytes than promised.
        return httpx.Response(response.status_code, headers=kept, content=content, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _encode_body(content: bytes, headers: dict[str, str]) -> dict[str, Any]:
    kind = headers.get("content-type", "")
    if not content:
        return {"body": ""}
    if kind.startswith(("video/", "image/", "application/octet-stream")):
        return {"body_base64": base64.b64encode(content).decode("ascii")}
    try:
        return {"body": content.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(content).decode("ascii")}


class Normalizer:
    """Rewrites a recording: hosts to the real gateway's, volatile values to stable names, secrets out."""

    _PATTERNS = (
        ("job", re.compile(r"job_[0-9a-f]{20}")),
        ("sig", re.compile(r"(?<=signature=)[0-9a-f]{16,}")),
        ("exp", re.compile(r"(?<=expires=)[0-9.]+")),
        ("upload", re.compile(r"(?<=/_emulator/uploads/)[0-9a-f]{16}")),
        ("created", re.compile(r'(?<="created_at": )[0-9]+')),
    )

    def __init__(self, origin: str | None, secrets: tuple[str, ...]) -> None:
        self.origin = origin
        self.secrets = secrets
        self._names: dict[str, str] = {}

    def _stable(self, kind: str, value: str) -> str:
        key = f"{kind}:{value}"
        if key not in self._names:
            count = sum(1 for k in self._names if k.startswith(kind + ":")) + 1
            self._names[key] = {
                "job": f"job_{count:020d}",
                "sig": f"{count:032x}",
                "exp": f"{1900000000 + count}.000",
                "upload": f"{count:016x}",
                "created": str(1800000000 + count),
            }[kind]
        return self._names[key]

    def text(self, value: str) -> str:
        """One string, normalized."""
        if self.origin:
            value = value.replace(self.origin + "/v1/files", DEFAULT_MEDIA_URL + "/v1/files")
            value = value.replace(self.origin + "/_emulator/uploads", UPLOAD_HOST + "/_emulator/uploads")
            value = value.replace(self.origin, DEFAULT_BASE_URL)
        for kind, pattern in self._PATTERNS:
            value = pattern.sub(lambda m, kind=kind: self._stable(kind, m.group(0)), value)  # type: ignore[misc]
        return redact(value, *self.secrets)

    def tree(self, value: Any) -> Any:
        """A JSON-ready structure, every string normalized (Authorization masked)."""
        if isinstance(value, dict):
            return {k: ("Bearer ***" if k.lower() == "authorization" else self.tree(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def make_clip(path: Path, *, seconds: float = 2.0, fps: int = 10, width: int = 160, height: int = 120) -> float:
    """Write a small test clip (a red square moving over blue) and return its duration."""
    import av
    import numpy as np

    frames = round(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.empty((height, width, 3), np.uint8)
            image[...] = (20, 40, 200)
            left = (i * 3) % max(1, width - width // 3)
            image[height // 4 : height * 3 // 4, left : left + width // 3] = (230, 40, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return frames / fps


async def _record_one(
    spec: ScenarioSpec,
    *,
    base_url: str,
    media_url: str,
    api_key: str,
    input_url: str,
    media_duration: float,
    origin: str | None,
    source: str,
    workdir: Path,
) -> dict[str, Any]:
    recorder = RecordingTransport(httpx.AsyncHTTPTransport())
    settings = {"base_url": base_url, "media_url": media_url, **spec.settings}
    backend = AigatewayBackend(
        load_settings({**settings, "api_key": spec.api_key or api_key}, {}), BackendContext(transport=recorder)
    )
    try:
        outcome = await run_steps(backend, spec, input_url=input_url, media_duration=media_duration, workdir=workdir)
    finally:
        await backend.aclose()
    normalizer = Normalizer(origin, (api_key, *([spec.api_key] if spec.api_key else [])))
    return {
        "name": spec.name,
        "description": spec.description,
        "recorded_from": source,
        "steps": spec.steps,
        "settings": dict(spec.settings),
        "input_url": normalizer.text(input_url),
        "media_duration": media_duration,
        "exchanges": normalizer.tree(recorder.exchanges),
        "outcome": normalizer.tree(outcome),
    }


def _write(scenario: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{scenario['name']}.json"
    path.write_text(json.dumps(scenario, indent=1, sort_keys=False) + "\n")
    return path


async def record_emulator(out: Path, *, only: set[str] | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Record the scenarios from a fresh emulator each (fast, synthetic engine) into ``out``."""
    from vidmatte_aigateway.emulator import EMULATOR_KEY, EmulatorConfig, run_emulator

    written = []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        clip = workdir / "clip.mp4"
        duration = make_clip(clip)
        for spec in SCENARIOS:
            if only is not None and spec.name not in only:
                continue
            config = EmulatorConfig(speed_factor=0.02, engine="synthetic", seed=1)
            config.update(dict(spec.emulator))
            async with run_emulator(config) as emulator:
                async with httpx.AsyncClient() as client:
                    upload = await client.post(
                        emulator.base_url + "/_emulator/uploads",
                        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                    )
                input_url = upload.json()["url"]
                for fault in spec.faults:
                    emulator.inject(**fault)
                scenario = await _record_one(
                    spec,
                    base_url=emulator.base_url,
                    media_url=emulator.base_url,
                    api_key=EMULATOR_KEY,
                    input_url=input_url,
                    media_duration=duration,
                    origin=emulator.base_url,
                    source="emulator",
                    workdir=workdir,
                )
            path = _write(scenario, out)
            written.append(path)
            log(f"{spec.name}: {len(scenario['exchanges'])} exchanges -> {scenario['outcome']}")
    return written


async def record_live(
    out: Path,
    *,
    api_key: str,
    input_url: str,
    duration: float,
    base_url: str = DEFAULT_BASE_URL,
    media_url: str = DEFAULT_MEDIA_URL,
    only: set[str] | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Record the ``live`` scenarios against the real gateway (spends money on the happy path)."""
    written = []
    with tempfile.TemporaryDirectory() as folder:
        for spec in SCENARIOS:
            if not spec.live or (only is not None and spec.name not in only):
                continue
            live_spec = ScenarioSpec(spec.name, spec.description, spec.steps, api_key=spec.api_key, live=True)
            scenario = await _record_one(
                live_spec,
                base_url=base_url,
                media_url=media_url,
                api_key=api_key,
                input_url=input_url,
                media_duration=duration,
                origin=None,
                source="live",
                workdir=Path(folder),
            )
            written.append(_write(scenario, out))
            log(f"{spec.name}: {len(scenario['exchanges'])} exchanges -> {scenario['outcome']}")
    return written


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m vidmatte_aigateway.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SCENARIO_DIR, help="folder for the JSON files")
    parser.add_argument("--only", action="append", help="record only this scenario (repeatable)")
    parser.add_argument("--live", action="store_true", help=f"record against the live gateway ({API_KEY_ENV} needed)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    parser.add_argument("--media-url", default=DEFAULT_MEDIA_URL)
    parser.add_argument("--input-url", help="live: a video the gateway can fetch")
    parser.add_argument("--duration", type=float, default=2.0, help="live: the input's duration in seconds")
    args = parser.parse_args(argv)
    only = set(args.only) if args.only else None
    if args.live:
        key = os.environ.get(API_KEY_ENV, "")
        if not key or not args.input_url:
            parser.error(f"--live needs {API_KEY_ENV} in the environment and --input-url")
        if args.out == SCENARIO_DIR:
            parser.error("--live needs --out (the shipped scenarios are the emulator's)")
        asyncio.run(
            record_live(
                args.out,
                api_key=key,
                input_url=args.input_url,
                duration=args.duration,
                base_url=args.base_url,
                media_url=args.media_url,
                only=only,
            )
        )
    else:
        asyncio.run(record_emulator(args.out, only=only))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Record the replay scenarios: ``python -m vidmatte_prama.record [--out DIR] [--live]``.

Each scenario drives a real :class:`~vidmatte_prama.PramaMatter` (or, for
``frame_missing_key``, a bare request) against the emulator with the faults
the scenario needs switched on, captures every HTTP exchange, and writes it in
the contract suite's scenario format, hosts rewritten to the default documented
host.  With ``--live`` (and ``PRAMA_API_KEY`` and optionally ``PRAMA_BASE_URL``
set) the fault-free scenarios are recorded against the real service instead,
into ``--out`` (default ``./live-scenarios``), so protocol drift shows up as a
diff against the shipped files.  The key is never written: requests are not
stored with their headers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import numpy as np
from numpy.typing import NDArray

from vidmatte.errors import VidmatteError
from vidmatte_prama._matter import PramaMatter
from vidmatte_prama._settings import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, PramaSettings
from vidmatte_prama.emulator import Emulator, EmulatorConfig

__all__ = ["PLANS", "Plan", "main", "record_all"]

_KEY = "prama-test-key-5f1d0c9a"  # the testing module's FAKE_KEY (kept literal: testing imports respx)


@attrs.frozen
class Plan:
    """How to provoke one scenario."""

    description: str
    script: tuple[str, ...] = ()
    request_format: str = "multipart"
    json_field: str = "image"
    key: str | None = _KEY
    attempts: int = 5
    repeat_last: bool = False
    """Mark the last exchange ``repeat`` (the provider keeps answering the same)."""
    emulator: dict[str, Any] = attrs.field(factory=dict)
    live: bool = False
    """Can be recorded against the real service (needs no fault)."""
    path: str = "/v2"
    method: str = "POST"


PLANS: dict[str, Plan] = {
    "frame_ok": Plan("multipart image_file with channels=alpha, answered with the raw PNG mask", live=True),
    "frame_ok_json": Plan(
        "JSON body with the legacy base64 field 'image': answered JSON {mask, width, height}",
        request_format="json",
        live=True,
    ),
    "frame_ok_image_base64": Plan(
        "JSON body with 'image_base64': answered with raw PNG bytes (a GUESS; the docs do not say)",
        request_format="json",
        json_field="image_base64",
        live=True,
    ),
    "frame_unauthorized": Plan(
        "a frame request with a wrong key: 401 invalid_api_key (repeats)", key="wrong-key-0000", repeat_last=True
    ),
    "frame_missing_key": Plan("a frame request without x-api-key: 401 missing_api_key (repeats)", key=None, live=True),
    "frame_too_large": Plan(
        "an upload over the payload limit: 413 payload_too_large (repeats)",
        emulator={"max_payload": 512},
        repeat_last=True,
    ),
    "frame_rate_limited": Plan("a frame request answered 429 with Retry-After: 5, then a mask", script=("429",)),
    "frame_transient": Plan(
        "a frame request answered 503 (repeats): retries must stop", script=("503",), attempts=1, repeat_last=True
    ),
    "frame_transient_then_ok": Plan("a frame request answered 503, then 500, then a mask", script=("503", "500")),
    "frame_malformed": Plan(
        "a frame request answered 200 with malformed JSON (repeats)",
        script=("malformed",),
        attempts=1,
        repeat_last=True,
    ),
    "frame_not_image": Plan(
        "a frame request answered 200 image/png with bytes that are no image (repeats)",
        script=("not-image",),
        attempts=1,
        repeat_last=True,
    ),
    "frame_html": Plan(
        "a frame request answered 200 with a proxy's HTML sign-in page (repeats)",
        script=("html",),
        attempts=1,
        repeat_last=True,
    ),
    "frame_proxy_502_then_ok": Plan(
        "a frame request answered 502 with a proxy's HTML page, then a mask", script=("html-502",)
    ),
    "health": Plan("GET /v2/health", method="GET", path="/v2/health", live=True),
}
"""Every shipped scenario and how it is provoked."""


def recording_frame() -> NDArray[np.uint8]:
    """The frame every scenario sends: 48 x 64, a bright square on a dark background."""
    frame = np.full((48, 64, 3), 20, dtype=np.uint8)
    frame[12:36, 20:44] = 230
    return frame


class _Recorder(httpx.AsyncBaseTransport):
    """Passes requests to a real transport and keeps each exchange."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[tuple[httpx.Request, int, dict[str, str], bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # keep the body for the summary (multipart bodies stream)
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        keep = ("content-type", "retry-after", "x-request-id")
        headers = {name: response.headers[name] for name in keep if name in response.headers}
        self.exchanges.append((request, response.status_code, headers, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    if "json" in headers.get("content-type", ""):
        try:
            return {"json": json.loads(body)}
        except ValueError:
            pass
    if not body.startswith(b"\x89PNG"):
        try:
            return {"text": body.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"base64": base64.b64encode(body).decode("ascii")}


def _request_summary(request: httpx.Request) -> dict[str, Any]:
    """What went over the wire, for people reading the file (never the key)."""
    summary: dict[str, Any] = {"method": request.method, "url": None}
    content_type = request.headers.get("content-type", "")
    summary["content_type"] = content_type.split(";")[0]
    summary["x_api_key"] = "present" if request.headers.get("x-api-key") else "absent"
    if content_type.startswith("application/json"):
        body = json.loads(request.content)
        summary["json_fields"] = sorted(body)
        summary["options"] = {k: v for k, v in body.items() if k not in {"image", "image_base64"}}
    elif content_type.startswith("multipart/"):
        text = request.content.decode("latin-1")
        summary["form_fields"] = sorted(set(re.findall(r'(?<!file)name="([^"]+)"', text)))
    return summary


async def _record(
    name: str, plan: Plan, base_url: str, key: str | None
) -> list[tuple[httpx.Request, int, dict[str, str], bytes]]:
    recorder = _Recorder()
    if plan.method == "GET" or plan.key is None:
        headers = {} if plan.key is None else {"x-api-key": key or ""}
        async with httpx.AsyncClient(transport=recorder, base_url=base_url, headers=headers) as client:
            if plan.method == "GET":
                await client.get(plan.path)
            else:
                files = {"image_file": ("frame.jpg", _jpeg(recording_frame()), "image/jpeg")}
                await client.post(plan.path, data={"channels": "alpha", "format": "png"}, files=files)
        return recorder.exchanges
    settings = PramaSettings(
        api_key=key,
        base_url=base_url,
        request_format=plan.request_format,
        json_field=plan.json_field,
        attempts=plan.attempts,
        requests_per_second=None,
    )
    matter = PramaMatter(settings, transport=recorder)
    try:
        await matter.matte([recording_frame()])
    except VidmatteError:
        pass  # the failure is what the scenario records
    finally:
        await matter.aclose()
    return recorder.exchanges


def _jpeg(frame: NDArray[np.uint8]) -> bytes:
    from vidmatte_prama._codec import encode_frame

    return encode_frame(frame, max_side=1024, quality=85)[0]


def _scenario(
    plan: Plan, exchanges: Sequence[tuple[httpx.Request, int, dict[str, str], bytes]], base_url: str
) -> dict[str, Any]:
    items = []
    for index, (request, status, headers, body) in enumerate(exchanges):
        summary = _request_summary(request)
        summary["url"] = str(request.url).replace(base_url.rstrip("/"), DEFAULT_BASE_URL, 1)
        item: dict[str, Any] = {
            "role": "other",
            "request": summary,
            "response": {"status": status, "headers": headers, **_body(headers, body)},
        }
        if plan.repeat_last and index == len(exchanges) - 1:
            item["repeat"] = True
        items.append(item)
    return {"description": plan.description, "recorded_from": "emulator", "exchanges": items}


async def record_all(out: Path, *, names: Sequence[str] | None = None, live: bool = False) -> list[Path]:
    """Record ``names`` (default: all, or all live-recordable ones) into ``out``; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, plan in PLANS.items():
        if (names and name not in names) or (live and not plan.live):
            continue
        if live:
            base_url = os.environ.get(BASE_URL_ENV, DEFAULT_BASE_URL)
            exchanges = await _record(name, plan, base_url, os.environ[API_KEY_ENV])
            scenario = _scenario(plan, exchanges, base_url)
            scenario["recorded_from"] = "live"
        else:
            config = EmulatorConfig(keys=frozenset({_KEY}), script=list(plan.script), retry_after=5, **plan.emulator)
            with Emulator(config, masks="synthetic") as emulator:
                exchanges = await _record(name, plan, emulator.base_url, plan.key)
                scenario = _scenario(plan, exchanges, emulator.base_url)
        path = out / f"{name}.json"
        path.write_text(json.dumps(scenario, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m vidmatte_prama.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="scenarios to record (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the package's scenarios/)")
    parser.add_argument("--live", action="store_true", help=f"record against the real service ({API_KEY_ENV})")
    args = parser.parse_args(argv)
    if args.live and not os.environ.get(API_KEY_ENV):
        parser.error(f"--live needs {API_KEY_ENV}")
    out = args.out or (Path("live-scenarios") if args.live else Path(__file__).parent / "scenarios")
    for path in asyncio.run(record_all(out, names=args.names, live=args.live)):
        print(path)


if __name__ == "__main__":
    main()

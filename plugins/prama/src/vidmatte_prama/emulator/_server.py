"""The emulator's HTTP side: Prama's ``/v2`` protocol on aiohttp, with switchable faults."""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import io
import json
import math
import random
import threading
import time
import uuid
from typing import Any

import attrs
import numpy as np
from aiohttp import BodyPartReader, web
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from vidmatte_prama.emulator._masks import MaskSource

__all__ = ["FAULTS", "EmulatorConfig", "EmulatorState", "KeyStats", "RecordedMask", "build_app", "key_label"]

FAULTS = ("ok", "429", "500", "502", "503", "413", "drop", "drop-after", "html", "html-502", "malformed", "not-image")
"""Fault names a script may hold, one per request.

``drop`` closes the connection before any work, ``drop-after`` after the mask
was made (and charged); ``html`` answers 200 with a proxy's HTML page,
``html-502`` a proxy's 502 page; ``malformed`` answers 200 with broken JSON,
``not-image`` 200 ``image/png`` bytes that are no image.
"""

MAX_PAYLOAD = 30 * 1024 * 1024
"""Prama's documented upload limit (413 ``payload_too_large``)."""
MAX_PIXELS = 100_000_000
"""Prama's documented pixel limit (413 ``image_too_large``)."""


def key_label(key: str) -> str:
    """How the emulator names a key in stats: a short hash, never the key."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12] if key else "no-key"


@attrs.define
class EmulatorConfig:
    """The emulator's switches; change them while it runs with :meth:`Emulator.configure`."""

    keys: frozenset[str] | None = frozenset({"test-key"})
    """Accepted API keys; ``None`` accepts any non-empty key."""
    latency: float = 0.0
    """Seconds each ``POST /v2`` takes before answering."""
    requests_per_second: float | None = None
    """Per-key limit (a token bucket of one second's worth); beyond it, 429 with ``Retry-After``."""
    retry_after: int = 1
    """``Retry-After`` seconds of a scripted 429 (rate-limit 429s say when a token is due)."""
    error_rate: float = 0.0
    """Share of requests answered 503 at random (seeded)."""
    drop_rate: float = 0.0
    """Share of requests whose connection is dropped without an answer (seeded)."""
    script: list[str] = attrs.field(factory=list)
    """Faults for the next requests, in order (see :data:`FAULTS`); consumed as requests arrive."""
    seed: int = 0
    max_payload: int = MAX_PAYLOAD
    max_pixels: int = MAX_PIXELS
    record_masks: bool = True
    """Keep every returned mask (for end-to-end comparisons); off for long benchmarks."""


@attrs.define
class KeyStats:
    """Per-key counters: every request, and the masks returned (what Prama charges for)."""

    calls: int = 0
    masks: int = 0
    statuses: dict[int, int] = attrs.field(factory=dict)
    """Responses sent, by status (dropped connections count under 0)."""


@attrs.frozen
class RecordedMask:
    """One mask the emulator returned."""

    seq: int
    key: str
    """The key's label (:func:`key_label`)."""
    image_sha256: str
    image_size: tuple[int, int]
    """(width, height) of the uploaded image."""
    mask: NDArray[np.uint8] = attrs.field(eq=False, repr=False)
    thumbnail: NDArray[np.uint8] = attrs.field(eq=False, repr=False)
    """The uploaded image as 16 x 16 grey levels: enough to tell which frame it was."""
    mask_sha256: str = ""
    dropped: bool = False
    """True when the answer was lost on the way (``drop-after``): charged, never delivered."""


class EmulatorState:
    """Everything the handlers share: config, counters, buckets, records.  Thread-safe reads."""

    def __init__(self, config: EmulatorConfig, masks: MaskSource) -> None:
        self.config = config
        self.masks = masks
        self.lock = threading.Lock()
        self.stats: dict[str, KeyStats] = collections.defaultdict(KeyStats)
        self.records: list[RecordedMask] = []
        self._buckets: dict[str, tuple[float, float]] = {}
        self._rng = random.Random(config.seed)
        self._seq = 0

    def reseed(self) -> None:
        self._rng = random.Random(self.config.seed)

    def take_token(self, label: str) -> float:
        """0 when the key may send now, else the seconds until it may (its bucket is spent)."""
        rate = self.config.requests_per_second
        if rate is None:
            return 0.0
        capacity = max(1.0, rate)
        now = time.monotonic()
        tokens, updated = self._buckets.get(label, (capacity, now))
        tokens = min(capacity, tokens + (now - updated) * rate)
        if tokens >= 1.0:
            self._buckets[label] = (tokens - 1.0, now)
            return 0.0
        self._buckets[label] = (tokens, now)
        return (1.0 - tokens) / rate

    def next_fault(self) -> str:
        with self.lock:
            if self.config.script:
                return self.config.script.pop(0)
            roll = self._rng.random()
        if roll < self.config.drop_rate:
            return "drop"
        if roll < self.config.drop_rate + self.config.error_rate:
            return "503"
        return "ok"

    def count(self, label: str, status: int, *, mask: bool = False) -> None:
        with self.lock:
            stats = self.stats[label]
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if mask:
                stats.masks += 1

    def record(self, label: str, image: NDArray[np.uint8], data: bytes, mask: NDArray[np.uint8], dropped: bool) -> None:
        thumb = np.asarray(Image.fromarray(image, "RGB").convert("L").resize((16, 16), Image.Resampling.BOX))
        with self.lock:
            self._seq += 1
            self.records.append(
                RecordedMask(
                    seq=self._seq,
                    key=label,
                    image_sha256=hashlib.sha256(data).hexdigest(),
                    image_size=(image.shape[1], image.shape[0]),
                    mask=mask,
                    thumbnail=thumb,
                    mask_sha256=hashlib.sha256(mask.tobytes()).hexdigest(),
                    dropped=dropped,
                )
            )


STATE = web.AppKey("state", EmulatorState)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    request_id = "req_" + uuid.uuid4().hex[:16]
    body = {"error": {"code": code, "message": message, "status": status, "request_id": request_id}}
    return web.json_response(body, status=status, headers={"x-request-id": request_id, **(headers or {})})


def _drop(request: web.Request) -> web.Response:
    # Abort the socket: the client sees the connection die with no answer.
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


class _BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _read_upload(request: web.Request, max_payload: int) -> tuple[bytes, dict[str, str], bool]:
    """(image bytes, options, answer-as-JSON) from a multipart or JSON ``POST /v2``."""
    if request.content_length is not None and request.content_length > max_payload:
        limit = f"{max_payload // (1024 * 1024)} MB" if max_payload >= 1024 * 1024 else f"{max_payload} bytes"
        raise _BadRequest(413, "payload_too_large", f"payload too large: the limit is {limit}")
    content_type = request.content_type
    options: dict[str, str] = {}
    if content_type.startswith("multipart/"):
        data = None
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # nested multipart: not part of the protocol
                raise _BadRequest(400, "invalid_request", "nested multipart is not supported")
            if part.name == "image_file":
                data = bytes(await part.read())
            elif part.name:
                options[part.name] = (await part.text()).strip()
        if data is None:
            raise _BadRequest(400, "missing_image", "multipart field image_file is required")
        return data, options, False
    if content_type == "application/json":
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise _BadRequest(400, "invalid_json", "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "invalid_json", "request body must be a JSON object")
        options = {k: str(v) for k, v in body.items() if k not in {"image", "image_base64", "image_url"}}
        if "image_url" in body:
            raise _BadRequest(400, "unsupported", "the emulator cannot fetch image_url (no network)")
        field = "image" if "image" in body else "image_base64" if "image_base64" in body else None
        if field is None:
            raise _BadRequest(400, "missing_image", "one of image, image_base64 or image_url is required")
        encoded = str(body[field])
        if encoded.startswith("data:"):
            encoded = encoded.partition(",")[2]
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _BadRequest(400, "invalid_image", f"{field} is not valid base64") from None
        # The legacy field ``image`` forces mask mode and a JSON answer (documented);
        # ``image_base64`` answering raw bytes is a GUESS (the docs do not say).
        return data, options, field == "image"
    raise _BadRequest(400, "invalid_request", "send multipart/form-data with image_file, or JSON")


def _decode_image(data: bytes, max_pixels: int) -> NDArray[np.uint8]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise _BadRequest(413, "image_too_large", f"image exceeds {max_pixels // 1_000_000} megapixels")
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise _BadRequest(400, "invalid_image", "image_file is not a readable image") from None


def _png(array: NDArray[np.uint8], mode: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "PNG", compress_level=1)
    return out.getvalue()


async def _remove_background(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    key = request.headers.get("x-api-key", "")
    label = key_label(key)
    with state.lock:
        state.stats[label].calls += 1
    if not key:
        state.count(label, 401)
        return _error(401, "missing_api_key", "API key is missing: send it in the x-api-key header")
    if config.keys is not None and key not in config.keys:
        state.count(label, 401)
        return _error(401, "invalid_api_key", "API key is invalid")
    wait = state.take_token(label)
    if wait > 0:
        state.count(label, 429)
        return _error(429, "rate_limited", "too many requests", headers={"Retry-After": str(max(1, math.ceil(wait)))})
    fault = state.next_fault()
    if fault == "drop":
        state.count(label, 0)
        return _drop(request)
    if fault in {"429", "500", "502", "503", "413"}:
        status = int(fault)
        state.count(label, status)
        codes = {
            429: "rate_limited",
            500: "internal_error",
            502: "bad_gateway",
            503: "unavailable",
            413: "payload_too_large",
        }
        headers = {"Retry-After": str(config.retry_after)} if status == 429 else None
        return _error(status, codes[status], f"emulated {status}", headers=headers)
    if fault in {"html", "html-502"}:
        status = 200 if fault == "html" else 502
        state.count(label, status)
        title = "Sign in to continue" if status == 200 else "502 Bad Gateway"
        html = f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return web.Response(status=status, text=html, content_type="text/html")
    if config.latency > 0:
        await asyncio.sleep(config.latency)
    try:
        data, options, json_answer = await _read_upload(request, config.max_payload)
        image = _decode_image(data, config.max_pixels)
    except _BadRequest as exc:
        state.count(label, exc.status)
        return _error(exc.status, exc.code, exc.message)
    if fault == "malformed":
        state.count(label, 200)
        return web.Response(status=200, body=b'{"mask": "iVBORw0K', content_type="application/json")
    if fault == "not-image":
        state.count(label, 200)
        return web.Response(status=200, body=b"\x89PNG\r\n\x1a\nnot really", content_type="image/png")
    mask = await state.masks.mask(image)
    dropped = fault == "drop-after"
    state.count(label, 0 if dropped else 200, mask=True)
    if config.record_masks:
        state.record(label, image, data, mask, dropped)
    if dropped:
        return _drop(request)
    request_id = "req_" + uuid.uuid4().hex[:16]
    if options.get("channels", "rgba") == "alpha" or json_answer:
        png = _png(mask, "L")
    else:
        png = _png(np.dstack([image, mask]), "RGBA")
    if json_answer:
        body = {"mask": base64.b64encode(png).decode("ascii"), "width": image.shape[1], "height": image.shape[0]}
        return web.json_response(body, headers={"x-request-id": request_id})
    return web.Response(body=png, content_type="image/png", headers={"x-request-id": request_id})


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "emulator": True, "masks": state.masks.name})


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    with state.lock:
        body = {label: attrs.asdict(stats) for label, stats in state.stats.items()}
    return web.json_response(body)


async def _records(request: web.Request) -> web.Response:
    state = request.app[STATE]
    with state.lock:
        body = [
            {
                "seq": r.seq,
                "key": r.key,
                "image_sha256": r.image_sha256,
                "image_size": list(r.image_size),
                "mask_sha256": r.mask_sha256,
                "dropped": r.dropped,
            }
            for r in state.records
        ]
    return web.json_response(body)


async def _configure(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        changes = json.loads(await request.read())
        apply_config(state, changes)
    except (ValueError, TypeError, AttributeError) as exc:
        return _error(400, "invalid_config", str(exc))
    return web.json_response({"ok": True})


def apply_config(state: EmulatorState, changes: dict[str, Any]) -> None:
    """Change switches by name (``keys`` and ``script`` accept lists)."""
    fields = attrs.fields_dict(EmulatorConfig)
    for name, value in changes.items():
        if name not in fields:
            raise ValueError(f"unknown emulator switch {name!r}")
        if name == "keys" and value is not None:
            value = frozenset(value)
        if name == "script":
            unknown = [fault for fault in value if fault not in FAULTS]
            if unknown:
                raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
            value = list(value)
        with state.lock:
            setattr(state.config, name, value)
    if "seed" in changes:
        state.reseed()


def build_app(state: EmulatorState) -> web.Application:
    """The aiohttp application: ``POST /v2`` and ``GET /v2/health`` on any host, plus ``/_emulator/*``."""
    app = web.Application(client_max_size=state.config.max_payload + 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v2", _remove_background)
    app.router.add_post("/v2/", _remove_background)
    app.router.add_get("/v2/health", _health)
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_get("/_emulator/masks", _records)
    app.router.add_post("/_emulator/config", _configure)
    return app

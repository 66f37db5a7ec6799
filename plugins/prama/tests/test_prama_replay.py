"""Recorded exchanges replayed through a respx router injected as the transport (virtual time)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from vidmatte_prama import KNOWN_BASE_URLS
from vidmatte_prama.plugin import create_matter
from vidmatte_prama.testing import FAKE_KEY, Replay, context, replay, scenario_names

from vidmatte.errors import (
    AuthenticationError,
    ProtocolError,
    RequestRejectedError,
    TransientError,
    VidmatteError,
)
from vidmatte.testing import run_virtual


def _run(
    scenario: str, frame: NDArray[np.uint8], settings: Mapping[str, Any] | None = None, *, base_url: str | None = None
) -> tuple[NDArray[np.uint8] | VidmatteError, Replay, float]:
    """Matte ``frame`` against ``scenario``; return the mask or the error, the replay, virtual seconds taken."""
    rec = replay(scenario) if base_url is None else replay(scenario, base_url=base_url)
    config = dict(settings or {})
    if base_url is not None:
        config["base_url"] = base_url

    async def main() -> tuple[NDArray[np.uint8] | VidmatteError, float]:
        loop = asyncio.get_running_loop()
        matter = create_matter(context(transport=rec.transport, settings=config))
        start = loop.time()
        try:
            (mask,) = await matter.matte([frame])
            return mask, loop.time() - start
        except VidmatteError as exc:
            return exc, loop.time() - start
        finally:
            await matter.aclose()

    result, took = run_virtual(main())
    return result, rec, took


def _form(request: Any) -> dict[str, bytes]:
    """The multipart fields of a request, by name."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = body[:-2]
    return fields


def _assert_square_mask(mask: NDArray[np.uint8], frame: NDArray[np.uint8]) -> None:
    assert mask.shape == frame.shape[:2]
    assert mask.dtype == np.uint8
    assert mask[24, 32] == 255  # inside the bright square
    assert mask[2, 2] == 0  # background


def test_every_scenario_file_is_well_formed() -> None:
    names = scenario_names()
    assert {"frame_ok", "frame_ok_json", "frame_unauthorized", "frame_missing_key", "frame_too_large"} <= set(names)
    for name in names:
        rec = replay(name)
        assert rec.router.routes


def test_multipart_success_and_what_went_over_the_wire(square_frame: NDArray[np.uint8]) -> None:
    mask, rec, _ = _run("frame_ok", square_frame)
    assert isinstance(mask, np.ndarray)
    _assert_square_mask(mask, square_frame)
    (request,) = rec.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.backgrounderase.com/v2"
    assert request.headers["x-api-key"] == FAKE_KEY
    assert "authorization" not in request.headers
    fields = _form(request)
    assert fields["channels"] == b"alpha"
    assert fields["format"] == b"png"
    assert "size" not in fields
    with Image.open(io.BytesIO(fields["image_file"])) as upload:
        assert upload.format == "JPEG"
        assert upload.size == (64, 48)
    assert not rec.unexpected


def test_size_option_is_sent(square_frame: NDArray[np.uint8]) -> None:
    _, rec, _ = _run("frame_ok", square_frame, {"size": "preview"})
    assert _form(rec.requests[0])["size"] == b"preview"


@pytest.mark.parametrize("base_url", KNOWN_BASE_URLS)
def test_both_hosts(square_frame: NDArray[np.uint8], base_url: str) -> None:
    mask, rec, _ = _run("frame_ok", square_frame, base_url=base_url)
    assert isinstance(mask, np.ndarray)
    assert rec.requests[0].url.host == base_url.split("//")[1]


@pytest.mark.parametrize(("scenario", "field"), [("frame_ok_json", "image"), ("frame_ok_image_base64", "image_base64")])
def test_json_fallback(square_frame: NDArray[np.uint8], scenario: str, field: str) -> None:
    mask, rec, _ = _run(scenario, square_frame, {"request_format": "json", "json_field": field})
    assert isinstance(mask, np.ndarray)
    _assert_square_mask(mask, square_frame)
    (request,) = rec.requests
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body["channels"] == "alpha"
    assert set(body) == {field, "channels", "format"}
    with Image.open(io.BytesIO(base64.b64decode(body[field]))) as upload:
        assert upload.format == "JPEG"


def test_large_frame_mask_scaled_back(square_frame: NDArray[np.uint8]) -> None:
    # A frame 4x the recorded one: the upload shrinks to max_side, the mask comes back at full size.
    big = np.repeat(np.repeat(square_frame, 4, axis=0), 4, axis=1)
    mask, rec, _ = _run("frame_ok", big, {"max_side": 64})
    assert isinstance(mask, np.ndarray)
    assert mask.shape == (192, 256)
    assert mask[96, 128] == 255
    assert mask[8, 8] == 0
    with Image.open(io.BytesIO(_form(rec.requests[0])["image_file"])) as upload:
        assert upload.size == (64, 48)


@pytest.mark.parametrize(
    ("scenario", "code"), [("frame_unauthorized", "invalid_api_key"), ("frame_missing_key", "missing_api_key")]
)
def test_401_is_an_authentication_error_sent_once(square_frame: NDArray[np.uint8], scenario: str, code: str) -> None:
    error, rec, _ = _run(scenario, square_frame)
    assert isinstance(error, AuthenticationError)
    assert error.status_code == 401
    assert code in str(error)
    assert error.request_id
    assert FAKE_KEY not in str(error)
    assert len(rec.requests) == 1


def test_413_is_rejected_with_a_hint(square_frame: NDArray[np.uint8]) -> None:
    error, rec, _ = _run("frame_too_large", square_frame)
    assert isinstance(error, RequestRejectedError)
    assert error.status_code == 413
    assert not error.retryable
    assert "payload_too_large" in str(error)
    assert "max_side" in str(error)
    assert len(rec.requests) == 1


def test_429_waits_retry_after_then_succeeds(square_frame: NDArray[np.uint8]) -> None:
    mask, rec, took = _run("frame_rate_limited", square_frame)
    assert isinstance(mask, np.ndarray)
    assert len(rec.requests) == 2
    assert took >= 5.0  # Retry-After: 5, on the virtual clock
    assert took < 35.0


@pytest.mark.parametrize("scenario", ["frame_transient_then_ok", "frame_proxy_502_then_ok"])
def test_5xx_retried_with_backoff(square_frame: NDArray[np.uint8], scenario: str) -> None:
    mask, rec, _ = _run(scenario, square_frame)
    assert isinstance(mask, np.ndarray)
    _assert_square_mask(mask, square_frame)
    assert len(rec.requests) in {2, 3}
    assert not rec.unexpected


def test_5xx_retries_are_bounded(square_frame: NDArray[np.uint8]) -> None:
    error, rec, _ = _run("frame_transient", square_frame, {"attempts": 3})
    assert isinstance(error, TransientError)
    assert error.status_code == 503
    assert len(rec.requests) == 3


@pytest.mark.parametrize(
    ("scenario", "says"),
    [("frame_malformed", "malformed JSON"), ("frame_html", "HTML page"), ("frame_not_image", "cannot be decoded")],
)
def test_unreadable_answers_are_protocol_errors(square_frame: NDArray[np.uint8], scenario: str, says: str) -> None:
    error, rec, _ = _run(scenario, square_frame)
    assert isinstance(error, ProtocolError)
    assert says in str(error)
    assert error.status_code == 200
    assert len(rec.requests) == 1


def test_health() -> None:
    rec = replay("health")

    async def main() -> dict[str, Any]:
        matter = create_matter(context(transport=rec.transport))
        try:
            return await matter.health()
        finally:
            await matter.aclose()

    assert run_virtual(main())["status"] == "ok"
    assert rec.requests[0].url.path == "/v2/health"

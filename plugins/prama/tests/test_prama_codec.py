"""Resizing before upload, mask decoding in every documented shape, scaling back."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from vidmatte_prama._codec import MaskDecodeError, decode_mask, encode_frame, fit_size, scale_mask


def _png(array: np.ndarray, mode: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (1024, 576)), ((1080, 1920), (576, 1024)), ((640, 360), (640, 360)), ((4000, 10), (1024, 3))],
)
def test_fit_size_keeps_aspect(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_size(*size, 1024) == expected


def test_large_frame_uploaded_as_small_jpeg() -> None:
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[270:810, 480:1440] = (200, 120, 40)
    data, size = encode_frame(frame, max_side=1024, quality=85)
    assert size == (1024, 576)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.size == (1024, 576)
        pixels = np.asarray(image)
    # The subject stays where it was, proportionally (no 1024 x 1024 squash).
    assert abs(int(pixels[288, 512, 0]) - 200) < 12
    assert pixels[20, 20].max() < 12
    assert len(data) < 60_000


def test_small_frame_not_upscaled() -> None:
    frame = np.full((48, 64, 3), 90, np.uint8)
    _, size = encode_frame(frame, max_side=1024, quality=85)
    assert size == (64, 48)


def test_encode_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        encode_frame(np.zeros((4, 4), np.uint8), max_side=1024, quality=85)


def test_raw_png_mask() -> None:
    mask = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    assert np.array_equal(decode_mask(_png(mask, "L"), "image/png"), mask)


def test_png_signature_wins_over_a_wrong_content_type() -> None:
    mask = np.full((8, 8), 200, np.uint8)
    assert decode_mask(_png(mask, "L"), "application/octet-stream")[0, 0] == 200


def test_rgba_cutout_gives_its_alpha() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 77
    assert decode_mask(_png(rgba, "RGBA"), "image/png")[3, 3] == 77


@pytest.mark.parametrize("prefix", ["", "data:image/png;base64,"])
def test_json_mask(prefix: str) -> None:
    mask = np.full((6, 10), 255, np.uint8)
    body = json.dumps({"mask": prefix + base64.b64encode(_png(mask, "L")).decode(), "width": 10, "height": 6})
    decoded = decode_mask(body.encode(), "application/json")
    assert decoded.shape == (6, 10)
    assert decoded.min() == 255


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"<html><body>Sign in</body></html>", "text/html", "HTML"),
        (b'{"mask": "iVBORw0K', "application/json", "malformed JSON"),
        (b'{"status": "ok"}', "application/json", "no base64 'mask'"),
        (b'{"mask": "@@@"}', "application/json", "base64"),
        (b"\x89PNG\r\n\x1a\nnot really", "image/png", "cannot be decoded"),
    ],
)
def test_undecodable_answers(body: bytes, content_type: str, says: str) -> None:
    with pytest.raises(MaskDecodeError, match=says):
        decode_mask(body, content_type)


def test_scale_back_to_frame_size() -> None:
    small = np.zeros((576, 1024), np.uint8)
    small[144:432, 256:768] = 255
    big = scale_mask(small, 1920, 1080)
    assert big.shape == (1080, 1920)
    assert big[540, 960] == 255
    assert big[100, 100] == 0
    # Edges land where the subject's edges are in the full-size frame (within a pixel or two).
    row = big[540]
    assert abs(int(np.argmax(row > 127)) - 480) <= 2
    assert scale_mask(big, 1920, 1080) is big

"""The emulator on a real loopback socket: protocol variants, errors, faults, counters, records."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from vidmatte_prama.emulator import Emulator, EmulatorConfig, key_label, synthetic_mask
from vidmatte_prama.testing import FAKE_KEY, running_emulator


def _jpeg(frame: NDArray[np.uint8]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame, "RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def _post(emulator: Emulator, frame: NDArray[np.uint8], *, key: str | None = FAKE_KEY, **form: str) -> httpx.Response:
    headers = {"x-api-key": key} if key is not None else {}
    files = {"image_file": ("f.jpg", _jpeg(frame), "image/jpeg")}
    return httpx.post(emulator.base_url + "/v2", headers=headers, files=files, data=form, timeout=10)


def _png(content: bytes) -> NDArray[np.uint8]:
    with Image.open(io.BytesIO(content)) as image:
        return np.asarray(image)


def test_health(emulator: Emulator) -> None:
    body = httpx.get(emulator.base_url + "/v2/health").json()
    assert body["status"] == "ok"
    assert body["masks"] == "synthetic"


@pytest.mark.parametrize("host", ["api.backgrounderase.com", "api.backgrounderase.net"])
def test_both_hosts_paths(emulator: Emulator, square_frame: NDArray[np.uint8], host: str) -> None:
    files = {"image_file": ("f.jpg", _jpeg(square_frame), "image/jpeg")}
    headers = {"x-api-key": FAKE_KEY, "host": host}
    response = httpx.post(emulator.base_url + "/v2", headers=headers, files=files, data={"channels": "alpha"})
    assert response.status_code == 200
    assert httpx.get(emulator.base_url + "/v2/health", headers={"host": host}).status_code == 200


def test_multipart_alpha_returns_the_mask_png(emulator: Emulator, square_frame: NDArray[np.uint8]) -> None:
    response = _post(emulator, square_frame, channels="alpha")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    mask = _png(response.content)
    assert mask.shape == (48, 64)
    assert mask[24, 32] == 255
    assert mask[2, 2] == 0
    stats = emulator.stats(FAKE_KEY)
    assert (stats.calls, stats.masks) == (1, 1)
    (record,) = emulator.records
    assert np.array_equal(record.mask, mask)
    assert record.image_size == (64, 48)


def test_rgba_by_default(emulator: Emulator, square_frame: NDArray[np.uint8]) -> None:
    cutout = _png(_post(emulator, square_frame).content)
    assert cutout.shape == (48, 64, 4)
    assert cutout[24, 32, 3] == 255


def test_json_image_answers_json_mask(emulator: Emulator, square_frame: NDArray[np.uint8]) -> None:
    body = {"image": base64.b64encode(_jpeg(square_frame)).decode()}
    response = httpx.post(emulator.base_url + "/v2", headers={"x-api-key": FAKE_KEY}, json=body)
    answer = response.json()
    assert (answer["width"], answer["height"]) == (64, 48)
    mask = _png(base64.b64decode(answer["mask"]))
    assert mask.shape == (48, 64)
    assert mask[24, 32] == 255


def test_json_image_base64_answers_png(emulator: Emulator, square_frame: NDArray[np.uint8]) -> None:
    body = {"image_base64": base64.b64encode(_jpeg(square_frame)).decode(), "channels": "alpha"}
    response = httpx.post(emulator.base_url + "/v2", headers={"x-api-key": FAKE_KEY}, json=body)
    assert response.headers["content-type"] == "image/png"
    assert _png(response.content)[24, 32] == 255


@pytest.mark.parametrize(("key", "code"), [(None, "missing_api_key"), ("wrong", "invalid_api_key")])
def test_401_bodies(emulator: Emulator, square_frame: NDArray[np.uint8], key: str | None, code: str) -> None:
    response = _post(emulator, square_frame, key=key)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] == 401
    assert error["request_id"]
    assert emulator.stats(key or "").masks == 0


def test_413_limits(square_frame: NDArray[np.uint8]) -> None:
    with running_emulator(EmulatorConfig(max_payload=300)) as emulator:
        assert _post(emulator, square_frame).json()["error"]["code"] == "payload_too_large"
    with running_emulator(EmulatorConfig(max_pixels=1000)) as emulator:
        response = _post(emulator, square_frame)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "image_too_large"


def test_rate_limit_per_key(square_frame: NDArray[np.uint8]) -> None:
    with running_emulator(EmulatorConfig(requests_per_second=2)) as emulator:
        statuses = [_post(emulator, square_frame, channels="alpha").status_code for _ in range(4)]
        assert statuses[:2] == [200, 200]
        assert 429 in statuses[2:]
        limited = _post(emulator, square_frame)
        if limited.status_code == 429:
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["error"]["code"] == "rate_limited"
        stats = emulator.stats(FAKE_KEY)
        assert stats.calls == 5
        assert stats.masks == stats.statuses[200]


def test_scripted_faults_and_drop(emulator: Emulator, square_frame: NDArray[np.uint8]) -> None:
    emulator.configure(script=["503", "html", "drop", "drop-after", "ok"])
    assert _post(emulator, square_frame).status_code == 503
    html = _post(emulator, square_frame)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            _post(emulator, square_frame)
    assert _post(emulator, square_frame).status_code == 200
    stats = emulator.stats(FAKE_KEY)
    # drop-after made (and charged) a mask that never arrived.
    assert (stats.calls, stats.masks) == (5, 2)
    assert [r.dropped for r in emulator.records] == [True, False]


def test_counters_and_config_over_http(emulator: Emulator, square_frame: NDArray[np.uint8]) -> None:
    _post(emulator, square_frame)
    stats = httpx.get(emulator.base_url + "/_emulator/stats").json()
    assert stats[key_label(FAKE_KEY)]["masks"] == 1
    assert FAKE_KEY not in json.dumps(stats)
    records = httpx.get(emulator.base_url + "/_emulator/masks").json()
    assert records[0]["mask_sha256"] == emulator.records[0].mask_sha256
    assert httpx.post(emulator.base_url + "/_emulator/config", json={"script": ["500"]}).status_code == 200
    assert _post(emulator, square_frame).status_code == 500
    assert httpx.post(emulator.base_url + "/_emulator/config", json={"bogus": 1}).status_code == 400


def test_latency(square_frame: NDArray[np.uint8]) -> None:
    with running_emulator(EmulatorConfig(latency=0.2)) as emulator:
        start = time.perf_counter()
        _post(emulator, square_frame)
        assert time.perf_counter() - start >= 0.2


def test_synthetic_mask_is_a_function_of_the_content(square_frame: NDArray[np.uint8]) -> None:
    moved = np.roll(square_frame, 10, axis=1)
    assert np.array_equal(synthetic_mask(square_frame), synthetic_mask(square_frame.copy()))
    assert not np.array_equal(synthetic_mask(square_frame), synthetic_mask(moved))
    assert np.array_equal(np.roll(synthetic_mask(square_frame), 10, axis=1), synthetic_mask(moved))


def test_command_line() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vidmatte_prama.emulator", "--port", "0", "--masks", "synthetic"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "prama emulator on http://127.0.0.1:" in line
        url = line.split()[3]
        assert httpx.get(url + "/v2/health", timeout=10).json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_real_masks_through_the_local_engine(tmp_path: object) -> None:
    import vidmatte
    from vidmatte.media import VideoReader, make_sample_clip, sample_person_box

    if "local" not in vidmatte.load_plugins().backends:
        pytest.skip("the local engine is not installed")
    clip = make_sample_clip(Path(str(tmp_path)) / "sample.mp4", seconds=0.2, size=(320, 180), audio=False)
    with VideoReader(clip) as reader:
        frame = next(iter(reader)).rgb
    with running_emulator(masks="local") as emulator:
        assert emulator.masks == "local"
        response = _post(emulator, frame, channels="alpha")
        assert response.status_code == 200
        mask = _png(response.content)
    left, top, right, bottom = sample_person_box(0, size=(320, 180), seconds=0.2)
    inside = mask[top:bottom, left:right].astype(float).mean()
    outside = np.concatenate([mask[:, :left].ravel(), mask[:, right:].ravel()]).astype(float).mean()
    assert inside > 40
    assert outside < 10


@pytest.mark.parametrize(
    ("request_format", "json_field"), [("multipart", "image"), ("json", "image"), ("json", "image_base64")]
)
def test_matter_on_a_real_socket(emulator: Emulator, request_format: str, json_field: str) -> None:
    import asyncio

    from vidmatte_prama import PramaMatter, PramaSettings

    frame = np.full((1080, 1920, 3), 30, np.uint8)
    frame[200:900, 600:1100] = 220
    settings = PramaSettings(
        api_key=FAKE_KEY, base_url=emulator.base_url, request_format=request_format, json_field=json_field
    )

    async def main() -> NDArray[np.uint8]:
        matter = PramaMatter(settings)
        try:
            (mask,) = await matter.matte([frame])
            return mask
        finally:
            await matter.aclose()

    mask = asyncio.run(main())
    (record,) = emulator.records
    assert record.image_size == (1024, 576)  # resized before upload, aspect kept
    assert mask.shape == (1080, 1920)  # scaled back
    expected = np.asarray(Image.fromarray(record.mask).resize((1920, 1080), Image.Resampling.BILINEAR))
    assert np.abs(mask.astype(int) - expected.astype(int)).max() <= 1
    assert mask[550, 850] == 255
    assert mask[100, 100] == 0

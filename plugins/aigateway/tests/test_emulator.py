"""The emulator itself: protocol variants, rate limits, faults, uploads, webhooks, counters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aigateway_media import assert_meaningful_alpha
from aiohttp import web
from vidmatte_aigateway import verify_webhook
from vidmatte_aigateway.emulator import EMULATOR_KEY, Emulator, EmulatorConfig, Fault, run_emulator
from vidmatte_aigateway.emulator._media import local_engine_available

AUTH = {"Authorization": f"Bearer {EMULATOR_KEY}"}
MODEL = "prama-labs/ben-v2-video"


def config(**changes: Any) -> EmulatorConfig:
    result = EmulatorConfig(speed_factor=0.02, engine="synthetic", min_poll_interval=0.0, seed=7)
    result.update(changes)
    return result


def with_emulator(
    cfg: EmulatorConfig, body: Callable[[Emulator, httpx.AsyncClient, str], Coroutine[Any, Any, None]]
) -> None:
    async def main() -> None:
        async with run_emulator(cfg) as emulator, httpx.AsyncClient(base_url=emulator.base_url) as client:
            upload = await client.post("/_emulator/uploads", files={"file": ("clip.mp4", CLIP.read_bytes())})
            await body(emulator, client, upload.json()["url"])

    asyncio.run(main())


CLIP = Path()


@pytest.fixture(autouse=True)
def _clip(clip: Path) -> None:
    global CLIP
    CLIP = clip


async def submit(client: httpx.AsyncClient, url: str, **extra: Any) -> httpx.Response:
    body = {"model": MODEL, "prompt": "x", "video_url": url, **extra}
    return await client.post("/v1/videos/generations", json=body, headers=AUTH)


async def wait_done(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(300):
        answer = await client.get(f"/v1/jobs/{job_id}", headers=AUTH)
        if answer.status_code == 200 and answer.json()["status"] in {"completed", "failed", "cancelled"}:
            record: dict[str, Any] = answer.json()
            return record
        await asyncio.sleep(0.02)
    raise AssertionError("job never finished")


def test_lifecycle_states_in_the_running_variant() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        emulator.configure(running_state="running", queue_seconds=5.0, speed_factor=0.05)
        created = await submit(client, url)
        assert created.status_code == 202
        job_id = created.json()["id"]
        seen: list[str] = []
        for _ in range(200):
            status = (await client.get(f"/v1/jobs/{job_id}", headers=AUTH)).json()["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "completed":
                break
            await asyncio.sleep(0.02)
        assert seen == ["queued", "running", "completed"]

    with_emulator(config(), body)


@pytest.mark.parametrize(
    ("variant", "where"),
    [("result.url", ("result", "url")), ("result.file_url", ("result", "file_url")), ("result_url", ("result_url",))],
)
def test_result_field_variants(variant: str, where: tuple[str, ...]) -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        record = await wait_done(client, (await submit(client, url)).json()["id"])
        value: Any = record
        for key in where:
            value = value[key]
        assert value.startswith(emulator.base_url + "/v1/files/jobs/")
        download = await client.get(value)
        assert download.status_code == 200
        assert download.headers["content-type"] == "video/webm"

    with_emulator(config(result_field=variant), body)


def test_error_shapes_and_no_charge_for_failures() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        emulator.inject("fail", route="submit")
        record = await wait_done(client, (await submit(client, url)).json()["id"])
        assert record["error"] == {"code": "upstream_error", "message": record["error"]["message"]}
        emulator.configure(error_shape="string")
        bogus = await wait_done(
            client, (await submit(client, emulator.base_url + "/_emulator/uploads/0/x.mp4")).json()["id"]
        )
        assert isinstance(bogus["error"], str)
        assert emulator.stats()["charges"] == 0
        assert emulator.stats()["submissions"] == 2

    with_emulator(config(), body)


def test_auth_rate_limit_headers_and_per_key_budget() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        assert (await client.get("/v1/jobs/job_x")).status_code == 401
        wrong = await client.get("/v1/jobs/job_x", headers={"Authorization": "Bearer sk-aig-nope"})
        assert wrong.json()["error"]["type"] == "authentication_error"
        answers = [await client.get("/v1/jobs/job_x", headers=AUTH) for _ in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        assert answers[0].headers["x-ratelimit-limit-requests"] == "12"
        assert answers[2].headers["Retry-After"] == "5"
        other = await client.get("/v1/jobs/job_x", headers={"Authorization": "Bearer sk-aig-other"})
        assert other.status_code == 404  # the other key has its own budget
        assert emulator.stats()["rate_limited"] == 1

    accounts = {EMULATOR_KEY: {"requests_per_minute": 12}, "sk-aig-other": {"requests_per_minute": 12}}
    with_emulator(config(accounts=accounts), body)


def test_fast_polls_get_304_and_jobs_are_private() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        job_id = (await submit(client, url)).json()["id"]
        first = await client.get(f"/v1/jobs/{job_id}", headers=AUTH)
        second = await client.get(f"/v1/jobs/{job_id}", headers=AUTH)
        assert (first.status_code, second.status_code) == (200, 304)
        stranger = await client.get(f"/v1/jobs/{job_id}", headers={"Authorization": "Bearer sk-aig-other"})
        assert stranger.status_code == 404
        assert emulator.stats()["not_modified"] == 1

    with_emulator(config(min_poll_interval=3.0, accounts={EMULATOR_KEY: {}, "sk-aig-other": {}}), body)


def test_idempotent_submits_and_validation() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        headers = {**AUTH, "Idempotency-Key": "k1"}
        payload = {"model": MODEL, "prompt": "x", "video_url": url}
        one = await client.post("/v1/videos/generations", json=payload, headers=headers)
        two = await client.post("/v1/videos/generations", json=payload, headers=headers)
        assert one.json()["id"] == two.json()["id"]
        reused = await client.post("/v1/videos/generations", json={**payload, "prompt": "other"}, headers=headers)
        assert reused.json()["id"] == one.json()["id"]  # lenient by default
        emulator.configure(strict_idempotency=True)
        reused = await client.post("/v1/videos/generations", json={**payload, "prompt": "other"}, headers=headers)
        assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
        no_prompt = await client.post("/v1/videos/generations", json={"model": MODEL, "video_url": url}, headers=AUTH)
        assert (no_prompt.status_code, no_prompt.json()["error"]["param"]) == (400, "prompt")
        other_model = await client.post("/v1/videos/generations", json={**payload, "model": "x/y"}, headers=AUTH)
        assert other_model.status_code == 404
        long_tag = await client.post("/v1/videos/generations", json=payload, headers={**AUTH, "x-aig-tag": "t" * 65})
        assert long_tag.status_code == 400
        stats = emulator.stats()
        assert (stats["submissions"], stats["idempotent_replays"]) == (1, 2)

    with_emulator(config(), body)


@pytest.mark.parametrize(("form", "delete_status", "post_status"), [("delete", 200, 404), ("post", 405, 200)])
def test_cancel_forms(form: str, delete_status: int, post_status: int) -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        job_id = (await submit(client, url)).json()["id"]
        deleted = await client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
        posted = await client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH)
        assert (deleted.status_code, posted.status_code) == (delete_status, post_status)
        record = (await client.get(f"/v1/jobs/{job_id}", headers=AUTH)).json()
        assert record["status"] == "cancelled"
        assert emulator.stats()["charges"] == 0

    with_emulator(config(cancel_form=form, queue_seconds=100.0), body)


def test_signed_urls_expire_and_can_be_reissued(tmp_path: Path) -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        record = await wait_done(client, (await submit(client, url)).json()["id"])
        result = record["result"]["url"]
        await asyncio.sleep(0.3)
        expired = await client.get(result)
        assert (expired.status_code, expired.json()["error"]["code"]) == (403, "url_expired")
        path = httpx.URL(result).path
        with_key = await client.get(path, headers=AUTH)
        assert with_key.status_code == 200
        assert (await client.get(path)).status_code == 401
        signed = await client.get(path + "/signed", params={"expires_in": 60}, headers=AUTH)
        fresh = await client.get(signed.json()["url"])
        assert fresh.status_code == 200
        (tmp_path / "out.webm").write_bytes(fresh.content)
        tampered = await client.get(signed.json()["url"].replace("signature=", "signature=0"))
        assert tampered.status_code == 403

    with_emulator(config(url_ttl=0.2), body)
    assert_meaningful_alpha(tmp_path / "out.webm")


def test_processing_time_follows_duration_and_speed() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await wait_done(client, (await submit(client, url)).json()["id"])
        elapsed = loop.time() - started
        # queue 1 s + 2 s of video x 1 s/s, +-20%, all x 0.2 (the upper bound allows a slow machine).
        assert 0.2 * (1 + 2 * 0.8) * 0.9 <= elapsed <= 0.2 * (1 + 2 * 1.2) + 1.5

    with_emulator(config(speed_factor=0.2), body)


def test_http_control_faults_and_config() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        assert (await client.post("/_emulator/config", json={"running_state": "bogus"})).status_code == 400
        assert (await client.post("/_emulator/config", json={"cost_report": "both"})).status_code == 200
        assert (await client.post("/_emulator/faults", json=[{"kind": "html", "route": "poll"}])).status_code == 200
        assert (await client.post("/_emulator/faults", json={"kind": "teleport"})).status_code == 400
        page = await client.get("/v1/jobs/job_x", headers=AUTH)
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (502, "text/html")
        record = await wait_done(client, (await submit(client, url)).json()["id"])
        assert record["usage"]["cost_cents"] == pytest.approx(0.2)
        final = await client.get(f"/v1/jobs/{record['id']}", headers=AUTH)
        assert final.headers["X-Cost-Cents"] == "0.2"
        stats = (await client.get("/_emulator/stats")).json()
        assert stats["faults"] == {"html": 1}
        assert stats["requests"]["poll"] >= 2
        assert (await client.post("/_emulator/reset")).json() == {"ok": True}
        assert emulator.stats()["requests"] == {}

    with_emulator(config(), body)


def test_webhook_deliveries_are_signed() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await wait_done(
                client, (await submit(client, url, webhook_url=f"http://127.0.0.1:{port}/hook")).json()["id"]
            )
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.02)
        finally:
            await runner.cleanup()
        headers, raw = received[0]
        payload = verify_webhook(headers, raw, "whsec-emulator")
        assert payload["status"] == "completed"
        assert payload["event"] == "job.completed"
        assert json.loads(raw)["usage"]["cost_cents"] == pytest.approx(0.2)
        assert emulator.stats()["webhooks_delivered"] == 1

    with_emulator(config(webhook_scheme="sdk"), body)


def test_fault_definitions_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        Fault("explode")
    with pytest.raises(ValueError, match="route"):
        Fault("429", route="elsewhere")
    with pytest.raises(ValueError, match="setting"):
        EmulatorConfig().update({"nope": 1})


@pytest.mark.skipif(not local_engine_available(), reason="the local engine (vidmatte-local) is not installed")
def test_local_engine_outputs(tmp_path: Path) -> None:
    """engine=local: real mattes of a clip with a person in it, through the local backend's public contract."""
    from vidmatte.media import make_sample_clip, read_frames_rgba, sample_person_box

    person = make_sample_clip(tmp_path / "person.mp4", seconds=1.0, fps=8, size=(160, 96), audio=False)

    async def main() -> None:
        async with (
            run_emulator(config(engine="local")) as emulator,
            httpx.AsyncClient(base_url=emulator.base_url) as client,
        ):
            upload = await client.post("/_emulator/uploads", files={"file": ("person.mp4", person.read_bytes())})
            record = await wait_done(client, (await submit(client, upload.json()["url"])).json()["id"])
            assert record["status"] == "completed", record
            (tmp_path / "out.webm").write_bytes((await client.get(record["result"]["url"])).content)

    asyncio.run(main())
    frames = list(read_frames_rgba(tmp_path / "out.webm"))
    assert len(frames) == 8
    for index, frame in enumerate(frames):
        alpha = frame[..., 3].astype(float)
        left, top, right, bottom = sample_person_box(index, fps=8, size=(160, 96), seconds=1.0)
        width = right - left
        torso = alpha[top + (bottom - top) // 3 : bottom, left + width // 3 : right - width // 3]
        outside = np.ones(alpha.shape, bool)
        outside[max(0, top - 4) :, max(0, left - 4) : right + 4] = False
        assert torso.mean() > 128, f"frame {index}: the person is opaque"
        assert alpha[outside].mean() < 64, f"frame {index}: the background is transparent"


def test_command_line_entry_point() -> None:
    """``python -m vidmatte_aigateway.emulator --port 0`` serves until stopped."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "vidmatte_aigateway.emulator", "--port", "0", "--engine", "synthetic"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "AIgateway emulator on http://127.0.0.1:" in line
        base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
        stats = httpx.get(base_url + "/_emulator/stats", timeout=10).json()
        assert stats["submissions"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_latency_switch_and_fault() -> None:
    async def body(emulator: Emulator, client: httpx.AsyncClient, url: str) -> None:
        loop = asyncio.get_running_loop()
        emulator.configure(latency=0.15)
        started = loop.time()
        await client.get("/v1/jobs/job_x", headers=AUTH)
        assert loop.time() - started >= 0.15
        emulator.configure(latency=0.0)
        emulator.inject("latency", route="poll", seconds=0.25)
        started = loop.time()
        await client.get("/v1/jobs/job_x", headers=AUTH)
        assert loop.time() - started >= 0.25
        started = loop.time()
        await client.get("/v1/jobs/job_x", headers=AUTH)
        assert loop.time() - started < 0.25
        assert emulator.stats()["faults"] == {"latency": 1}

    with_emulator(config(), body)

"""End to end on real sockets: the backend and the public client against the emulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aigateway_media import assert_meaningful_alpha
from vidmatte_aigateway import AigatewayBackend, load_settings
from vidmatte_aigateway.emulator import EMULATOR_KEY, EmulatorConfig, run_emulator

import vidmatte
from vidmatte import BackendContext, CostKind, JobState, MattingRequest, OutputFormat, Source
from vidmatte.errors import ConfigurationError
from vidmatte.media import probe


def _fast(**changes: Any) -> EmulatorConfig:
    config = EmulatorConfig(speed_factor=0.02, engine="synthetic", min_poll_interval=0.0, seed=3)
    config.update(changes)
    return config


def _env(base_url: str) -> dict[str, str]:
    return {
        "AIGATEWAY_API_KEY": EMULATOR_KEY,
        "AIGATEWAY_BASE_URL": base_url,
        "AIGATEWAY_MEDIA_URL": base_url,
        "VIDMATTE_UPLOAD_URL": base_url + "/_emulator/uploads",
    }


def test_backend_drives_emulator_with_uploader(clip: Path, tmp_path: Path) -> None:
    """submit (through the core http uploader) -> poll -> download, on a real socket."""

    async def main() -> None:
        async with run_emulator(_fast()) as emulator:
            plugins = vidmatte.load_plugins(environ={})
            env = _env(emulator.base_url)
            uploader = plugins.uploaders["http"].factory(BackendContext(env=env))
            backend = plugins.backend_spec("aigateway").factory(
                BackendContext(settings={"min_poll_interval": 0.05}, env=env, uploader=uploader)
            )
            assert isinstance(backend, AigatewayBackend)
            request = MattingRequest(Source(path=str(clip)), media=probe(clip))
            estimate = await backend.estimate(request)
            assert estimate.kind is CostKind.ESTIMATED
            assert estimate.amount == Decimal("0.0020")
            handle = await backend.submit(request, idempotency_key="e2e-1")
            for _ in range(200):
                snapshot = await backend.poll(handle)
                if snapshot.state.is_terminal:
                    break
                await asyncio.sleep(0.05)
            assert snapshot.state is JobState.SUCCEEDED
            assert snapshot.cost is not None
            assert snapshot.cost.amount == Decimal("0.002")
            artefact = snapshot.artefact()
            assert artefact is not None
            assert artefact.format is OutputFormat.WEBM
            await backend.download(handle, artefact, tmp_path / "out.webm")
            await backend.aclose()
            stats = emulator.stats()
            assert stats["submissions"] == 1
            assert stats["charges"] == 1
            assert stats["requests"]["upload"] == 1
            async with httpx.AsyncClient() as client:
                over_http = (await client.get(emulator.base_url + "/_emulator/stats")).json()
            assert Decimal(over_http["charged_usd"]) == Decimal("0.002")
        assert_meaningful_alpha(tmp_path / "out.webm")

    asyncio.run(main())


def test_local_file_without_uploader_says_how_to_configure(clip: Path) -> None:
    async def main() -> None:
        backend = AigatewayBackend(load_settings({"api_key": "sk-aig-x"}, {}), BackendContext())
        with pytest.raises(ConfigurationError) as caught:
            await backend.submit(MattingRequest(Source(path=str(clip))), idempotency_key="k")
        await backend.aclose()
        message = str(caught.value)
        assert "VIDMATTE_UPLOAD_URL" in message
        assert "\n" not in message

    asyncio.run(main())


def test_client_remove_with_faults_pays_once(clip: Path, tmp_path: Path) -> None:
    """vidmatte.AsyncClient.remove through 429s, 5xx, 304s, a dropped submit and an expired URL."""

    async def main() -> None:
        async with run_emulator(_fast(min_poll_interval=0.3)) as emulator:
            emulator.inject("drop", route="submit")
            emulator.inject("429", route="submit", retry_after=1)
            emulator.inject("5xx", route="poll", status=503)
            emulator.inject("expire", route="download")
            settings = vidmatte.Settings(backend="aigateway", backends={"aigateway": {"min_poll_interval": 0.1}})
            # The scheduler's priors suit minute-scale jobs; this emulator runs 50x faster.
            scheduler = vidmatte.Scheduler(policy=vidmatte.PollPolicy(prior_queue=0.05, prior_speed=0.05))
            async with vidmatte.AsyncClient(
                settings=settings, environ=_env(emulator.base_url), cache_dir=tmp_path / "cache", scheduler=scheduler
            ) as client:
                result = await client.remove(clip, tmp_path / "out.webm", timeout=60)
            stats = emulator.stats()
        assert result.cost.amount == Decimal("0.002")
        assert stats["submissions"] == 1, stats
        assert stats["idempotent_replays"] >= 1, stats
        assert stats["charges"] == 1, stats
        assert stats["faults"] == {"drop": 1, "429": 1, "5xx": 1, "expire": 1}, stats
        assert stats["not_modified"] >= 1, stats
        assert_meaningful_alpha(tmp_path / "out.webm")

    asyncio.run(main())

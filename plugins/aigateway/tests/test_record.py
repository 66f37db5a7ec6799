"""The recorder: fresh recordings replay, the live path works (against a loopback emulator), no key on disk."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from vidmatte_aigateway import testing
from vidmatte_aigateway.emulator import EMULATOR_KEY, EmulatorConfig, run_emulator
from vidmatte_aigateway.record import Normalizer, main, record_emulator, record_live

from vidmatte.testing import run_virtual


def _replays(folder: Path, name: str, tmp_path: Path) -> None:
    scenario = testing.load_scenario(name, folder)
    replay = testing.Replay(scenario)

    async def run() -> dict[str, object]:
        backend = replay.backend()
        try:
            return await replay.run_steps(backend, tmp_path)
        finally:
            await backend.aclose()

    assert run_virtual(run()) == scenario.outcome
    replay.assert_consumed()


def test_fresh_recordings_replay(tmp_path: Path) -> None:
    names = {"expired_url", "dropped_connection_submit", "truncated_download"}
    written = asyncio.run(record_emulator(tmp_path / "rec", only=names, log=lambda _: None))
    assert sorted(p.stem for p in written) == sorted(names)
    for name in names:
        _replays(tmp_path / "rec", name, tmp_path)
        text = (tmp_path / "rec" / f"{name}.json").read_text()
        assert EMULATOR_KEY not in text
        assert "127.0.0.1" not in text
    # The same scenario recorded twice has the same shape (what a drift diff compares).
    shipped = testing.load_scenario("dropped_connection_submit")
    fresh = testing.load_scenario("dropped_connection_submit", tmp_path / "rec")
    assert [e["request"]["method"] for e in fresh.exchanges][:2] == [e["request"]["method"] for e in shipped.exchanges][
        :2
    ]
    assert fresh.outcome == shipped.outcome


def test_live_mode_against_a_loopback_gateway(tmp_path: Path) -> None:
    """The live path, pointed at the emulator (no network here): same files, no key in them."""

    async def run() -> list[Path]:
        async with run_emulator(EmulatorConfig(speed_factor=0.02, engine="synthetic", min_poll_interval=0.0)) as emu:
            return await record_live(
                tmp_path / "live",
                api_key=EMULATOR_KEY,
                input_url=emu.base_url + "/_emulator/uploads/missing/clip.mp4",
                duration=2.0,
                base_url=emu.base_url,
                media_url=emu.base_url,
                log=lambda _: None,
            )

    written = asyncio.run(run())
    assert sorted(p.stem for p in written) == ["auth_401", "happy_processing_result_url", "not_found_404"]
    for path in written:
        data = json.loads(path.read_text())
        assert data["recorded_from"] == "live"
        assert EMULATOR_KEY not in path.read_text()
    # The missing input makes the live happy path fail, uncharged: recorded as it happened.
    happy = json.loads((tmp_path / "live" / "happy_processing_result_url.json").read_text())
    assert happy["outcome"]["state"] == "failed"
    assert happy["outcome"]["cost"] == "0"


def test_live_needs_a_key_and_an_output_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGATEWAY_API_KEY", raising=False)
    with pytest.raises(SystemExit):
        main(["--live", "--input-url", "https://example.com/v.mp4", "--out", "/tmp/x"])
    monkeypatch.setenv("AIGATEWAY_API_KEY", "sk-aig-test-000000")
    with pytest.raises(SystemExit):
        main(["--live", "--input-url", "https://example.com/v.mp4"])


def test_normalizer_is_stable_and_scrubs() -> None:
    normalizer = Normalizer("http://127.0.0.1:5555", ("sk-aig-secret-key",))
    text = (
        "http://127.0.0.1:5555/v1/files/jobs/job_0123456789abcdef0123/output.webm?expires=17.5&signature=abcdef0123456789"
        " http://127.0.0.1:5555/v1/jobs/job_0123456789abcdef0123 sk-aig-secret-key"
    )
    once = normalizer.text(text)
    assert once == normalizer.text(text)
    assert "https://media.aigateway.sh/v1/files/jobs/job_00000000000000000001/" in once
    assert "https://api.aigateway.sh/v1/jobs/job_00000000000000000001" in once
    assert "sk-aig-secret-key" not in once
    assert normalizer.tree({"Authorization": "Bearer sk-aig-secret-key"}) == {"Authorization": "Bearer ***"}

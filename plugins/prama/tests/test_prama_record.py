"""The recorder: re-recording from the emulator matches the shipped scenarios; the live path works."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from vidmatte_prama.record import PLANS, record_all
from vidmatte_prama.testing import FAKE_KEY, SCENARIO_DIR, load_scenario, running_emulator


def _shape(scenario: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What must not drift: per exchange the request, the status, the body kind and its JSON keys."""
    shape = []
    for exchange in scenario["exchanges"]:
        response = exchange["response"]
        kind = next(k for k in ("json", "text", "base64") if k in response)
        keys = sorted(response["json"]) if kind == "json" else None
        error_keys = sorted(response["json"]["error"]) if kind == "json" and "error" in response["json"] else None
        shape.append((json.dumps(exchange["request"], sort_keys=True), response["status"], kind, keys, error_keys))
    return shape


def test_every_plan_is_shipped() -> None:
    assert {path.stem for path in SCENARIO_DIR.glob("*.json")} == set(PLANS)


# frame_rate_limited is left out: its Retry-After makes the recorder wait 5 real seconds.
FAST = sorted(set(PLANS) - {"frame_rate_limited"})


def test_re_recording_matches_the_shipped_files(tmp_path: Path) -> None:
    written = asyncio.run(record_all(tmp_path, names=FAST))
    assert {path.stem for path in written} == set(FAST)
    for path in written:
        fresh = json.loads(path.read_text())
        assert _shape(fresh) == _shape(load_scenario(path.stem)), path.stem
        assert FAKE_KEY not in path.read_text()


def test_live_mode_records_the_fault_free_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_emulator() as emulator:
        monkeypatch.setenv("PRAMA_API_KEY", FAKE_KEY)
        monkeypatch.setenv("PRAMA_BASE_URL", emulator.base_url)
        written = asyncio.run(record_all(tmp_path, live=True))
    assert {path.stem for path in written} == {name for name, plan in PLANS.items() if plan.live}
    ok = json.loads((tmp_path / "frame_ok.json").read_text())
    assert ok["recorded_from"] == "live"
    assert ok["exchanges"][0]["request"]["url"] == "https://api.backgrounderase.com/v2"
    assert ok["exchanges"][0]["response"]["status"] == 200
    assert all(FAKE_KEY not in path.read_text() for path in written)

"""Every recorded scenario, replayed through a respx router on an injected MockTransport."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vidmatte_aigateway import testing
from vidmatte_aigateway._scenarios import SCENARIOS

from vidmatte.testing import run_virtual

NAMES = testing.scenario_names()


def test_every_scenario_is_recorded() -> None:
    assert sorted(spec.name for spec in SCENARIOS) == NAMES
    required = {
        "auth_401",
        "payment_402",
        "not_found_404",
        "rate_limited_429_then_ok",
        "server_error_5xx_then_ok",
        "job_failed_error_object",
        "cancel_delete",
        "expired_url",
        "malformed_json",
        "html_proxy_page",
    }
    assert required <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_replay_matches_recording(name: str, tmp_path: Path) -> None:
    scenario = testing.load_scenario(name)
    replay = testing.Replay(scenario)

    async def main() -> dict[str, object]:
        backend = replay.backend()
        try:
            return await replay.run_steps(backend, tmp_path)
        finally:
            await backend.aclose()

    outcome = run_virtual(main())
    assert outcome == scenario.outcome
    replay.assert_consumed()
    # Whatever was retried, the submit carried one idempotency key.
    keys = {
        r.headers.get("idempotency-key")
        for r in replay.requests
        if r.method == "POST" and r.url.path.endswith("/generations")
    }
    assert len(keys) <= 1
    assert None not in keys
    # The key goes to the gateway's hosts only, and never shows up in the outcome.
    for request in replay.requests:
        assert request.headers["authorization"] == f"Bearer {testing.REPLAY_KEY}"
    assert testing.REPLAY_KEY not in json.dumps(outcome)
    assert not list(tmp_path.glob("*.part"))

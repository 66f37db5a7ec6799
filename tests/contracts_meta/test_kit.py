"""The kit's own parts: scenario files, the replay, the recorder, deviations, skips and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from vidmatte.contracts import RecordingTransport, Replay, ScenarioError, load_scenarios, parse_scenario
from vidmatte.testing import run_virtual

pytest_plugins = ["pytester"]

URL = "https://api.example.test/v1/jobs/1"


def _scenario(*exchanges: dict[str, object]) -> Replay:
    return Replay(parse_scenario("t", {"exchanges": list(exchanges)}))


def _ex(role: str, method: str, url: str, status: int = 200, **kw: object) -> dict[str, object]:
    repeat = kw.pop("repeat", False)
    return {
        "role": role,
        "repeat": repeat,
        "request": {"method": method, "url": url},
        "response": {"status": status, **kw},
    }


async def _get_all(replay: Replay, *requests: tuple[str, str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=replay.transport) as client:
        return [await client.request(method, url) for method, url in requests]


def test_replay_answers_in_order_repeats_the_last_and_flags_the_unexpected() -> None:
    replay = _scenario(
        _ex("poll", "GET", URL, json={"status": "queued"}),
        _ex("poll", "GET", URL, json={"status": "done"}, repeat=True),
        _ex("submit", "POST", "https://api.example.test/v1/jobs?model=x", 202, json={"id": "1"}),
    )
    answers = run_virtual(
        _get_all(
            replay,
            ("GET", URL),
            ("GET", URL),
            ("GET", URL),
            ("POST", "https://api.example.test/v1/jobs"),  # the recorded query is missing: no match
            ("POST", "https://api.example.test/v1/jobs?model=x&extra=1"),  # a superset of it: matches
        )
    )
    assert [r.json().get("status") for r in answers[:3]] == ["queued", "done", "done"]
    assert answers[3].status_code == 418
    assert "not in scenario" in answers[3].text
    assert answers[4].status_code == 202
    assert [c.role for c in replay.calls] == ["poll", "poll", "poll", "unexpected", "submit"]
    assert len(replay.unexpected) == 1
    assert "NOT IN SCENARIO" in replay.transcript()


def test_replay_serves_downloads_in_chunks_and_records_virtual_time(tmp_path: Path) -> None:
    body = bytes(range(256)) * 40
    (tmp_path / "blob.bin").write_bytes(body)
    scenario = parse_scenario(
        "d", {"exchanges": [_ex("download", "GET", "https://cdn.example.test/x.bin", file="blob.bin")]}, folder=tmp_path
    )
    replay = Replay(scenario, chunk_size=1000)
    offsets: list[int] = []
    replay.on_download_chunk = offsets.append

    async def go() -> tuple[bytes, float]:
        import asyncio

        await asyncio.sleep(42)
        async with httpx.AsyncClient(transport=replay.transport) as client:
            response = await client.get("https://cdn.example.test/x.bin")
            return response.content, replay.calls[0].at

    content, at = run_virtual(go())
    assert content == body
    assert offsets == list(range(0, len(body), 1000))
    assert at == pytest.approx(42.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"exchanges": []}, "non-empty list"),
        ({"exchanges": [{"request": {"method": "GET"}, "response": {}}]}, "needs request.method"),
        ({"exchanges": [_ex("fetch", "GET", URL)]}, "role 'fetch'"),
        ({"exchanges": [_ex("poll", "GET", URL, json={}, text="x")]}, "at most one of"),
    ],
)
def test_scenario_errors_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario("broken", data)


def test_load_scenarios_reads_a_folder(tmp_path: Path) -> None:
    (tmp_path / "job_succeeds.json").write_text(json.dumps({"exchanges": [_ex("poll", "GET", URL, json={})]}))
    scenarios = load_scenarios(tmp_path)
    assert list(scenarios) == ["job_succeeds"]
    assert "job_succeeds" in scenarios
    with pytest.raises(ScenarioError, match=r"no \*\.json"):
        load_scenarios(tmp_path / "empty")


def test_recording_transport_drops_auth_and_redacts_secrets(tmp_path: Path) -> None:
    key = "sk-live-abcdef123456"

    def provider(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {key}"
        return httpx.Response(401, json={"error": {"message": f"invalid key {key}"}}, headers={"set-cookie": "s=1"})

    recorder = RecordingTransport(httpx.MockTransport(provider), role_of=lambda r: "submit", secrets=(key,))

    async def go() -> None:
        async with httpx.AsyncClient(transport=recorder) as client:
            response = await client.post("https://api.example.test/v1/jobs", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 401  # the caller still sees the real answer

    run_virtual(go())
    path = recorder.save(tmp_path / "submit_unauthorized.json", description="401")
    text = path.read_text()
    assert key not in text
    assert "set-cookie" not in text.lower()
    replay = Replay(load_scenarios(tmp_path).get("submit_unauthorized"))  # type: ignore[arg-type]
    (answer,) = run_virtual(_get_all(replay, ("POST", "https://api.example.test/v1/jobs")))
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "invalid key ***"
    assert replay.scenario.exchanges[0].repeat


SUITE_WITH_DEVIATIONS = """
import pytest
from vidmatte.contracts import BackendContractSuite, summarize_by_backend
from vidmatte_falqueue.testing import contract_subject

def pytest_terminal_summary(terminalreporter):
    summarize_by_backend(terminalreporter)

class TestFalqueue(BackendContractSuite):
    @pytest.fixture
    def vidmatte_subject(self):
        return contract_subject(deviations={
            # passes, so as a strict xfail it must fail: "the fix shows"
            "test_estimate_exists_before_submit": "pretend it is broken",
            # only the submit_rejected case
            "test_non_retryable_errors_are_not_retried[submit_rejected]": "pretend it retries 422",
        })
"""


def test_deviations_run_as_strict_xfail_and_the_summary_counts_them(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SUITE_WITH_DEVIATIONS.split("class TestFalqueue")[0])
    pytester.makepyfile(test_suite=SUITE_WITH_DEVIATIONS)
    result = pytester.runpytest_inprocess("-q", "-rs", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 2, result.stdout.str()  # both declared deviations pass: strict XPASS fails
    result.stdout.fnmatch_lines(
        [
            "*XPASS(strict)*declared deviation of backend 'falqueue': pretend it is broken*",
            "*vidmatte contract results by backend*",
            "falqueue: * passed, 2 failed, * skipped",
            "*skipped: backend 'falqueue' declares cancel",
            "*skipped: backend 'falqueue' is not a frame backend (contract group 'frames' not declared)",
        ]
    )


def test_suite_is_opt_in_not_an_autoloaded_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("--fixtures", "-p", "no:cacheprovider")
    assert "vidmatte_" not in result.stdout.str()


def test_a_suite_without_a_subject_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_forgot="from vidmatte.contracts import BackendContractSuite\n\nclass TestMine(BackendContractSuite):\n    pass\n"
    )
    result = pytester.runpytest_inprocess("-q", "-x", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*must override the 'vidmatte_subject' fixture*"])


NO_CANCEL = """
import attrs
import pytest
from vidmatte import CancelOutcome
from vidmatte.contracts import BackendContractSuite
from vidmatte_falqueue import CAPABILITIES, FalQueueBackend
from vidmatte_falqueue._settings import load
from vidmatte_falqueue.testing import contract_subject

NO_CANCEL = attrs.evolve(CAPABILITIES, cancel=False)

class NoCancel(FalQueueBackend):
    @property
    def capabilities(self):
        return NO_CANCEL

    async def cancel(self, handle):
        return CancelOutcome.UNSUPPORTED

class CancelsAnyway(NoCancel):
    async def cancel(self, handle):
        return await FalQueueBackend.cancel(self, handle)

def subject(cls):
    base = contract_subject()
    spec = attrs.evolve(base.spec, capabilities=NO_CANCEL, factory=lambda c: cls(load(c.settings, c.env), c))
    return attrs.evolve(base, spec=spec)

class TestNoCancel(BackendContractSuite):
    @pytest.fixture
    def vidmatte_subject(self):
        return subject(NoCancel)

class TestCancelsAnyway(BackendContractSuite):
    @pytest.fixture
    def vidmatte_subject(self):
        return subject(CancelsAnyway)
"""


def test_cancel_capability_drives_the_cancel_tests(pytester: pytest.Pytester) -> None:
    """Without the capability: UNSUPPORTED and no request passes, a backend still cancelling fails."""
    pytester.makepyfile(test_cancel=NO_CANCEL)
    recorder = pytester.inline_run("-k", "cancel", "-p", "no:cacheprovider")
    outcomes = {
        report.nodeid.split("::", 1)[1]: (report.outcome, report.longrepr)
        for report in recorder.getreports("pytest_runtest_logreport")
        if report.when == "call" or report.outcome != "passed"
    }
    assert outcomes["TestNoCancel::test_cancel_unsupported_without_capability"][0] == "passed"
    assert outcomes["TestCancelsAnyway::test_cancel_unsupported_without_capability"][0] == "failed"
    outcome, longrepr = outcomes["TestNoCancel::test_cancel_accepted"]
    assert outcome == "skipped"
    assert "backend 'falqueue' does not declare cancel" in str(longrepr)

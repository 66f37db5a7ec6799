"""Replay AIgateway exchanges recorded by :mod:`vidmatte_aigateway.record`, for any test suite.

The recordings ship in the package (``vidmatte_aigateway/scenarios/*.json``).
Each names its scenario, the backend settings used, the steps that were
driven, every HTTP exchange and the outcome.  Replaying builds a
``respx.Router`` with one route per (method, URL) whose answers come back in
recorded order, wraps it in ``httpx.MockTransport(router.handler)`` and injects
that as :attr:`vidmatte.BackendContext.transport` (no global patching)::

    from vidmatte.testing import run_virtual
    from vidmatte_aigateway import testing

    scenario = testing.load_scenario("rate_limited_429_then_ok")
    replay = testing.Replay(scenario)
    backend = replay.backend()                       # an AigatewayBackend on the replay transport
    outcome = run_virtual(replay.run_steps(backend)) # the recorded steps, on virtual time
    assert outcome == scenario.outcome
    replay.assert_consumed()                         # every recorded exchange was asked for
    replay.requests                                  # what the backend actually sent

For a provider-neutral contract suite, :func:`backend_on` builds the backend
on any transport (with a clock, limiter and uploader of the suite's choosing),
and :func:`scenario_names` lists what there is to replay.  Requests the
recording does not have fail the test with an ``AssertionError`` naming them.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections import defaultdict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx

from vidmatte import BackendContext, Clock, LoopClock, RateLimiter, Uploader
from vidmatte_aigateway._backend import AigatewayBackend
from vidmatte_aigateway._scenarios import SCENARIOS, ScenarioSpec, run_steps
from vidmatte_aigateway._settings import DEFAULT_BASE_URL, DEFAULT_MEDIA_URL, load_settings

__all__ = [
    "REPLAY_KEY",
    "SCENARIO_DIR",
    "Replay",
    "Scenario",
    "backend_on",
    "load_scenario",
    "scenario_names",
]

SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""The shipped recordings."""

REPLAY_KEY = "sk-aig-replay-0000000000"
"""The key replays use (recordings hold ``Bearer ***``; the replay checks one is sent)."""


@attrs.frozen
class Scenario:
    """One recorded scenario."""

    name: str
    description: str
    steps: str
    settings: Mapping[str, Any]
    """Backend settings besides hosts and key."""
    input_url: str
    media_duration: float
    exchanges: tuple[Mapping[str, Any], ...]
    outcome: Mapping[str, Any]
    """What the steps returned when recorded (see :meth:`Replay.run_steps`)."""
    recorded_from: str = "emulator"

    @property
    def spec(self) -> ScenarioSpec:
        """The recording recipe (for the ``steps``)."""
        for spec in SCENARIOS:
            if spec.name == self.name:
                return spec
        return ScenarioSpec(self.name, self.description, self.steps)


def scenario_names(folder: Path = SCENARIO_DIR) -> list[str]:
    """Names of the recorded scenarios in ``folder``."""
    return sorted(path.stem for path in folder.glob("*.json"))


def load_scenario(name: str, folder: Path = SCENARIO_DIR) -> Scenario:
    """Read scenario ``name`` (``FileNotFoundError`` listing the known ones if missing)."""
    path = folder / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no scenario {name!r} in {folder} (known: {', '.join(scenario_names(folder))})")
    data = json.loads(path.read_text())
    return Scenario(
        name=data["name"],
        description=data["description"],
        steps=data["steps"],
        settings=data.get("settings", {}),
        input_url=data["input_url"],
        media_duration=float(data["media_duration"]),
        exchanges=tuple(data["exchanges"]),
        outcome=data["outcome"],
        recorded_from=data.get("recorded_from", "emulator"),
    )


def backend_on(
    transport: httpx.AsyncBaseTransport,
    *,
    settings: Mapping[str, Any] | None = None,
    api_key: str = REPLAY_KEY,
    clock: Clock | None = None,
    limiter: RateLimiter | None = None,
    uploader: Uploader | None = None,
) -> AigatewayBackend:
    """An :class:`~vidmatte_aigateway.AigatewayBackend` on ``transport`` (hosts default to the real gateway's)."""
    data = {"base_url": DEFAULT_BASE_URL, "media_url": DEFAULT_MEDIA_URL, **dict(settings or {}), "api_key": api_key}
    context = BackendContext(
        transport=transport,
        clock=clock or LoopClock(),
        limiter=limiter,
        uploader=uploader,
    )
    return AigatewayBackend(load_settings(data, {}), context)


def _response(exchange: Mapping[str, Any], request: httpx.Request) -> httpx.Response:
    if "error" in exchange:
        # The connection dropped before an answer: what httpx raises then.
        error = getattr(httpx, str(exchange["error"]), httpx.RemoteProtocolError)
        raise error("recorded: connection dropped", request=request)
    recorded = exchange["response"]
    if "body_base64" in recorded:
        content = base64.b64decode(recorded["body_base64"])
    else:
        content = str(recorded.get("body") or "").encode()
    return httpx.Response(int(recorded["status"]), headers=dict(recorded["headers"]), content=content)


class Replay:
    """The recorded exchanges of ``scenario`` served through a respx router."""

    def __init__(self, scenario: Scenario) -> None:
        import respx

        self.scenario = scenario
        self.requests: list[httpx.Request] = []
        """Every request the backend sent, in order."""
        self._queues: dict[tuple[str, str, str], deque[Mapping[str, Any]]] = defaultdict(deque)
        for exchange in scenario.exchanges:
            url = httpx.URL(exchange["request"]["url"])
            self._queues[(exchange["request"]["method"], url.host, url.path)].append(exchange)
        self.router = respx.Router(assert_all_called=False, assert_all_mocked=True)
        for method, host, path in self._queues:
            route = self.router.route(method=method, scheme="https", host=host, path=path)
            route.mock(side_effect=self._answer)
        self.transport = httpx.MockTransport(self.router.handler)
        """The ``httpx`` transport to inject (``BackendContext.transport``)."""

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self._queues[(request.method, request.url.host, request.url.path)]
        if not queue:
            raise AssertionError(f"{self.scenario.name}: unrecorded extra request {request.method} {request.url}")
        exchange = queue.popleft()
        recorded = httpx.URL(exchange["request"]["url"])
        if recorded.params != request.url.params:
            raise AssertionError(f"{self.scenario.name}: {request.url} sent, {recorded} recorded")
        expected_auth = "authorization" in {k.lower() for k in exchange["request"].get("headers", {})}
        if expected_auth != ("authorization" in request.headers):
            raise AssertionError(f"{self.scenario.name}: Authorization header mismatch on {request.url}")
        return _response(exchange, request)

    def backend(self, **options: Any) -> AigatewayBackend:
        """The backend on this replay's transport, with the scenario's settings (see :func:`backend_on`)."""
        return backend_on(self.transport, settings=self.scenario.settings, **options)

    async def run_steps(self, backend: AigatewayBackend, workdir: Path | None = None) -> dict[str, Any]:
        """Drive ``backend`` through the scenario's steps; returns the outcome to compare with
        :attr:`Scenario.outcome` (downloads go to ``workdir``, a temporary folder by default)."""
        scenario = self.scenario
        if workdir is not None:
            return await run_steps(
                backend,
                scenario.spec,
                input_url=scenario.input_url,
                media_duration=scenario.media_duration,
                workdir=workdir,
            )
        with tempfile.TemporaryDirectory() as folder:
            return await run_steps(
                backend,
                scenario.spec,
                input_url=scenario.input_url,
                media_duration=scenario.media_duration,
                workdir=Path(folder),
            )

    def remaining(self) -> int:
        """Recorded exchanges not asked for yet."""
        return sum(len(queue) for queue in self._queues.values())

    def assert_consumed(self) -> None:
        """Fail unless the backend asked for every recorded exchange."""
        left = [f"{m} {h}{p} x{len(q)}" for (m, h, p), q in self._queues.items() if q]
        if left:
            raise AssertionError(f"{self.scenario.name}: recorded exchanges never requested: {', '.join(left)}")

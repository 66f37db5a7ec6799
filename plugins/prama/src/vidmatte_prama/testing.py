"""Test helpers for the ``prama`` backend, public so other suites can drive it too.

* :func:`replay` - a recorded scenario (``scenarios/*.json``, recorded from the
  emulator by ``python -m vidmatte_prama.record``) served by a ``respx.Router``
  wrapped in ``httpx.MockTransport(router.handler)``: inject it as
  ``BackendContext.transport``; nothing is patched globally.
* :func:`context` - a :class:`vidmatte.BackendContext` with a fake key.
* :func:`running_emulator` - the loopback emulator in a ``with`` block.
* :func:`contract_subject` - the :class:`vidmatte.contracts.BackendSubject` that
  runs the provider-neutral contract suite over this backend::

      from vidmatte.contracts import BackendContractSuite
      from vidmatte_prama.testing import contract_subject

      class TestPramaContract(BackendContractSuite):
          @pytest.fixture
          def vidmatte_subject(self):
              return contract_subject()

Scenario files use the contract suite's format (``{"description", "exchanges":
[{"role", "request": {"method", "url"}, "response": {"status", "headers",
"json"|"text"|"base64"}, "repeat"}]}``); frame requests have the role ``other``.
URLs are on the default host ``https://api.backgrounderase.com``.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import respx

from vidmatte import BackendContext
from vidmatte_prama._settings import API_KEY_ENV, DEFAULT_BASE_URL
from vidmatte_prama.emulator import Emulator, EmulatorConfig

__all__ = [
    "FAKE_KEY",
    "SCENARIO_DIR",
    "UNEXPECTED_STATUS",
    "Replay",
    "context",
    "contract_subject",
    "load_scenario",
    "replay",
    "running_emulator",
    "scenario_names",
]

FAKE_KEY = "prama-test-key-5f1d0c9a"
"""The key every scenario and emulator in tests uses (never a real one)."""
SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""Where the recorded scenarios live (shipped in the wheel)."""
UNEXPECTED_STATUS = 418
"""Answer to a request no recorded exchange matches (tests then see a RequestRejectedError)."""


def scenario_names() -> list[str]:
    """Names of the recorded scenarios (file stems)."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.json"))


def load_scenario(name: str) -> dict[str, Any]:
    """The raw JSON of scenario ``name``."""
    path = SCENARIO_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no scenario {name!r} (known: {', '.join(scenario_names())})")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _response(recorded: Mapping[str, Any]) -> httpx.Response:
    headers = dict(recorded.get("headers", {}))
    if "json" in recorded:
        content = json.dumps(recorded["json"]).encode()
        headers.setdefault("content-type", "application/json")
    elif "text" in recorded:
        content = str(recorded["text"]).encode()
    elif "base64" in recorded:
        content = base64.b64decode(recorded["base64"])
    else:
        content = b""
    return httpx.Response(int(recorded.get("status", 200)), headers=headers, content=content)


@attrs.define
class Replay:
    """A scenario being replayed: the transport to inject and what was asked of it."""

    name: str
    router: respx.Router
    transport: httpx.MockTransport
    unexpected: list[httpx.Request] = attrs.field(factory=list)
    """Requests no remaining exchange matched (answered :data:`UNEXPECTED_STATUS`)."""

    @property
    def requests(self) -> list[httpx.Request]:
        """Every request the backend sent, in order."""
        return [call.request for call in self.router.calls]


def replay(name: str, *, base_url: str = DEFAULT_BASE_URL) -> Replay:
    """Serve scenario ``name`` through a respx router; inject ``result.transport``.

    Each exchange answers one matching request in order; one marked ``repeat``
    answers every further one.  ``base_url`` moves the recorded host (to test
    the other documented host, for instance).
    """
    data = load_scenario(name)
    router = respx.Router(assert_all_called=False, assert_all_mocked=False)
    result = Replay(name, router, httpx.MockTransport(router.handler))
    queues: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for exchange in data["exchanges"]:
        method = exchange["request"]["method"].upper()
        url = exchange["request"]["url"].replace(DEFAULT_BASE_URL, base_url.rstrip("/"), 1)
        queues.setdefault((method, url), []).append(exchange)

    def answer(request: httpx.Request, queue: list[dict[str, Any]]) -> httpx.Response:
        if not queue:
            result.unexpected.append(request)
            return httpx.Response(UNEXPECTED_STATUS, json={"error": {"message": "not in the scenario"}})
        exchange = queue[0] if queue[0].get("repeat") else queue.pop(0)
        return _response(exchange["response"])

    for (method, url), queue in queues.items():
        router.route(method=method, url=url).mock(side_effect=lambda request, q=queue: answer(request, q))

    def unmatched(request: httpx.Request) -> httpx.Response:
        result.unexpected.append(request)
        return httpx.Response(UNEXPECTED_STATUS, json={"error": {"message": "not in the scenario"}})

    router.route().mock(side_effect=unmatched)
    return result


def context(
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> BackendContext:
    """A :class:`BackendContext` for ``prama`` with :data:`FAKE_KEY` in its environment."""
    environment = {API_KEY_ENV: FAKE_KEY} if env is None else dict(env)
    return BackendContext(settings=dict(settings or {}), env=environment, transport=transport, **kwargs)


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig | None = None, *, masks: str = "synthetic") -> Iterator[Emulator]:
    """The emulator on an ephemeral loopback port accepting :data:`FAKE_KEY`, stopped afterwards."""
    config = config or EmulatorConfig()
    if config.keys is not None and FAKE_KEY not in config.keys:
        config.keys = frozenset({*config.keys, FAKE_KEY})
    with Emulator(config, masks=masks) as emulator:
        yield emulator


def contract_subject(**overrides: Any) -> Any:
    """A ``vidmatte.contracts.BackendSubject`` for ``prama`` (frame group, recorded scenarios, fake key).

    ``overrides`` replace any of its fields (``deviations=...``, for instance).
    """
    from vidmatte.contracts import BackendSubject, Group, load_scenarios
    from vidmatte_prama.plugin import create_matter, vidmatte_register_backends

    fields: dict[str, Any] = {
        "spec": vidmatte_register_backends()[0],
        "scenarios": load_scenarios(SCENARIO_DIR),
        "groups": frozenset({Group.FRAMES}),
        "env": {API_KEY_ENV: FAKE_KEY},
        "secrets": (FAKE_KEY,),
        "idempotency_header": None,
        "frame_matter": create_matter,
    }
    fields.update(overrides)
    known = {field.name for field in attrs.fields(BackendSubject)}
    return BackendSubject(**{name: value for name, value in fields.items() if name in known})

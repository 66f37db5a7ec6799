"""The vidmatte contract suite: prove a backend keeps the :class:`~vidmatte.MattingBackend` promises.

Shipped inside the ``vidmatte`` distribution and opted into explicitly (it is
not an auto-loaded pytest plugin, so it never leaks fixtures into unrelated
projects).  A plugin's test module subclasses :class:`BackendContractSuite`
and describes its backend in a :class:`BackendSubject`::

    import pytest
    from vidmatte.contracts import BackendContractSuite, BackendSubject, load_scenarios

    class TestMyBackendContract(BackendContractSuite):
        @pytest.fixture
        def vidmatte_subject(self) -> BackendSubject:
            return BackendSubject(
                spec=my_backend_spec,                     # the spec your plugin registers
                scenarios=load_scenarios(SCENARIO_DIR),   # recorded exchanges, one file per situation
                env={"MY_API_KEY": "fake-key-for-tests"},
                secrets=("fake-key-for-tests",),
            )

The backend is built by the spec's own factory on a context whose transport
is a ``respx.Router`` wrapped in ``httpx.MockTransport`` (never global
patching); waits run on :func:`vidmatte.testing.run_virtual`'s fake clock.
:data:`SCENARIOS` lists the situations and what each file must record;
``docs/writing-a-plugin.md`` walks through it.  Requires ``pytest`` and ``respx``.
"""

from __future__ import annotations

import pytest

# Plain asserts in the suite's modules get pytest's detailed failure messages.
pytest.register_assert_rewrite(
    "vidmatte.contracts._suite_core",
    "vidmatte.contracts._suite_http",
    "vidmatte.contracts._suite_timing",
    "vidmatte.contracts._suite_sync",
    "vidmatte.contracts._suite_frames",
    "vidmatte.contracts._harness",
)

from vidmatte.contracts._harness import IDEMPOTENCY_KEY, Harness  # noqa: E402
from vidmatte.contracts._recorder import RecordingTransport  # noqa: E402
from vidmatte.contracts._replay import Call, Replay  # noqa: E402
from vidmatte.contracts._scenarios import (  # noqa: E402
    ROLES,
    Exchange,
    Scenario,
    ScenarioError,
    ScenarioSet,
    load_scenarios,
    parse_scenario,
)
from vidmatte.contracts._subject import SCENARIOS, BackendSubject, Group, default_frame, default_request  # noqa: E402
from vidmatte.contracts._suite import BackendContractSuite  # noqa: E402
from vidmatte.contracts._summary import summarize_by_backend  # noqa: E402

__all__ = [
    "BackendContractSuite",
    "BackendSubject",
    "Call",
    "Exchange",
    "Group",
    "Harness",
    "IDEMPOTENCY_KEY",
    "ROLES",
    "RecordingTransport",
    "Replay",
    "SCENARIOS",
    "Scenario",
    "ScenarioError",
    "ScenarioSet",
    "default_frame",
    "default_request",
    "load_scenarios",
    "parse_scenario",
    "summarize_by_backend",
]

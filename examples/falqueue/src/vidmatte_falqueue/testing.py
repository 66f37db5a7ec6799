"""The falqueue backend described to the vidmatte contract suite (public: others may run it too).

::

    from vidmatte.contracts import BackendContractSuite
    from vidmatte_falqueue.testing import contract_subject

    class TestFalqueueContract(BackendContractSuite):
        @pytest.fixture
        def vidmatte_subject(self):
            return contract_subject()
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vidmatte.contracts import BackendSubject, load_scenarios
from vidmatte_falqueue.plugin import vidmatte_register_backends

__all__ = ["FAKE_KEY", "SCENARIO_DIR", "contract_subject"]

SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""The recorded exchanges, one JSON file per contract situation."""

FAKE_KEY = "falkey-contract-0a1b2c3d4e5f"
"""The key the scenarios were recorded with; not a real one."""


def contract_subject(*, deviations: Mapping[str, str] | None = None) -> BackendSubject:
    """The falqueue backend, its scenarios and its fake key."""
    (spec,) = vidmatte_register_backends()
    return BackendSubject(
        spec=spec,
        scenarios=load_scenarios(SCENARIO_DIR),
        env={"FAL_KEY": FAKE_KEY},
        secrets=(FAKE_KEY,),
        idempotency_header="Idempotency-Key",
        deviations=dict(deviations or {}),
    )

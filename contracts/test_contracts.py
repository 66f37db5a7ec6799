"""One contract suite class per backend (``TestContract_<name>``), generated from :data:`subjects.SUBJECTS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from subjects import SUBJECTS

from vidmatte.contracts import BackendContractSuite, BackendSubject
from vidmatte.contracts._summary import BACKEND_PROPERTY


def _suite_for(name: str, make: Callable[[], BackendSubject]) -> type[BackendContractSuite]:
    def vidmatte_subject(self: Any, request: pytest.FixtureRequest) -> BackendSubject:
        # Tag first, so a backend that cannot be set up still shows in the per-backend summary.
        request.node.user_properties.append((BACKEND_PROPERTY, name))
        try:
            return make()
        except (ImportError, AttributeError) as exc:
            pytest.skip(f"backend '{name}' has no contract subject yet ({type(exc).__name__}: {exc})")

    return type(
        f"TestContract_{name}",
        (BackendContractSuite,),
        {"vidmatte_subject": pytest.fixture(name="vidmatte_subject")(vidmatte_subject)},
    )


for _name, _make in SUBJECTS.items():
    globals()[f"TestContract_{_name}"] = _suite_for(_name, _make)

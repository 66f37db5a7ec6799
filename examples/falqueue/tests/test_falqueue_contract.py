"""The vidmatte contract suite over the falqueue backend, opted into explicitly."""

from __future__ import annotations

import pytest
from vidmatte_falqueue.testing import contract_subject

from vidmatte.contracts import BackendContractSuite, BackendSubject


class TestFalqueueContract(BackendContractSuite):
    """Every contract test, against falqueue's recorded scenarios."""

    @pytest.fixture
    def vidmatte_subject(self) -> BackendSubject:
        return contract_subject()

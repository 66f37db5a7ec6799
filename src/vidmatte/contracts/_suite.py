"""The suite class plugins subclass, and its ``vidmatte_`` fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidmatte.contracts._harness import Harness
from vidmatte.contracts._subject import BackendSubject
from vidmatte.contracts._suite_core import CoreContract
from vidmatte.contracts._suite_frames import FrameContract
from vidmatte.contracts._suite_http import HttpContract
from vidmatte.contracts._suite_sync import SyncContract
from vidmatte.contracts._suite_timing import TimingContract
from vidmatte.contracts._summary import BACKEND_PROPERTY

__all__ = ["BackendContractSuite"]


class BackendContractSuite(CoreContract, HttpContract, TimingContract, SyncContract, FrameContract):
    """Every contract test.  Subclass it as ``Test...`` and override ``vidmatte_subject``::

        from vidmatte.contracts import BackendContractSuite, BackendSubject

        class TestMyBackendContract(BackendContractSuite):
            @pytest.fixture
            def vidmatte_subject(self) -> BackendSubject:
                return my_subject()

    Tests of groups the subject does not declare, of capabilities it does not
    declare and of scenarios it does not supply are skipped with the reason;
    its declared deviations run as strict xfail.
    """

    @pytest.fixture
    def vidmatte_subject(self) -> BackendSubject:
        """Override this fixture to return the subject under test."""
        raise pytest.UsageError(
            f"{type(self).__name__} must override the 'vidmatte_subject' fixture to return a BackendSubject"
        )

    @pytest.fixture
    def vidmatte_harness(
        self, vidmatte_subject: BackendSubject, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> Harness:
        """The test's harness: replays, backends built on them, virtual time, checks."""
        return Harness(vidmatte_subject, tmp_path, caplog)

    @pytest.fixture(autouse=True)
    def vidmatte_deviations(self, request: pytest.FixtureRequest, vidmatte_subject: BackendSubject) -> None:
        """Turn a declared deviation into a strict xfail of that test."""
        node = request.node
        node.user_properties.append((BACKEND_PROPERTY, vidmatte_subject.name))
        original = getattr(node, "originalname", node.name)
        reason = vidmatte_subject.deviations.get(node.name) or vidmatte_subject.deviations.get(original)
        if reason:
            node.add_marker(
                pytest.mark.xfail(
                    strict=True, reason=f"declared deviation of backend '{vidmatte_subject.name}': {reason}"
                )
            )

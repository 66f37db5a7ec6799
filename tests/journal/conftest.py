"""Fixtures of the journal tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos: kills the CLI with SIGKILL against emulators in their own processes (deselect: -m 'not chaos')",
    )

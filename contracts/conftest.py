"""This repository's contract run: the suite over every in-tree backend and the example plugin.

``pytest contracts/`` ends with a per-backend summary (passed, skipped with
reasons, xfailed) written by :func:`vidmatte.contracts.summarize_by_backend`.
"""

from __future__ import annotations

from typing import Any

from vidmatte.contracts import summarize_by_backend


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Per-backend counts after the usual summary."""
    summarize_by_backend(terminalreporter)

"""Per-backend contract summary at the end of the run (as docs/writing-a-plugin.md suggests)."""

from __future__ import annotations

from typing import Any

from vidmatte.contracts import summarize_by_backend


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Counts of passed, skipped (with reasons) and xfailed contract tests."""
    summarize_by_backend(terminalreporter)

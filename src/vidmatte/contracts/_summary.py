"""A per-backend summary of a contract run, for a ``pytest_terminal_summary`` hook."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

__all__ = ["BACKEND_PROPERTY", "summarize_by_backend"]

BACKEND_PROPERTY = "vidmatte_backend"
"""The ``user_properties`` key the suite tags each test report with."""

_OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")


def _reason(report: Any, outcome: str) -> str:
    if outcome == "xfailed":
        return str(getattr(report, "wasxfail", "")).removeprefix("reason: ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""


def summarize_by_backend(terminalreporter: Any) -> dict[str, Counter[str]]:
    """Write, per backend, how many contract tests passed, failed, skipped (why) and xfailed.

    Call it from ``pytest_terminal_summary(terminalreporter)`` in a conftest;
    returns the counts (backend -> outcome -> number).
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for outcome in _OUTCOMES:
        for report in terminalreporter.stats.get(outcome, []):
            backend = dict(getattr(report, "user_properties", ())).get(BACKEND_PROPERTY)
            if backend is None:
                continue
            # Setup/teardown reports are passes of no test; count each test once.
            if outcome == "passed" and report.when != "call":
                continue
            counts[backend][outcome] += 1
            if outcome in {"skipped", "xfailed"}:
                reasons[backend][(outcome, _reason(report, outcome))] += 1
    if not counts:
        return {}
    terminalreporter.write_sep("=", "vidmatte contract results by backend")
    for backend in sorted(counts):
        line = ", ".join(f"{counts[backend][o]} {o}" for o in _OUTCOMES if counts[backend][o])
        terminalreporter.write_line(f"{backend}: {line}")
        for (outcome, reason), number in sorted(reasons[backend].items()):
            terminalreporter.write_line(f"    {number:3d} {outcome}: {reason}")
    return dict(counts)

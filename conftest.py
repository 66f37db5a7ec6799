"""Test-session setup for the whole repository.

Tests (and the CLI processes they start) must never read or write the user's own
vidmatte journal, cache or configuration: the XDG folders point into a temporary
folder for the session, which platformdirs follows.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _HOME
    _HOME = tempfile.mkdtemp(prefix="vidmatte-tests-")
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        os.environ[name] = os.path.join(_HOME, name.lower())
    os.environ.pop("VIDMATTE_JOURNAL", None)
    os.environ.pop("VIDMATTE_CONFIG", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _HOME is not None:
        shutil.rmtree(_HOME, ignore_errors=True)

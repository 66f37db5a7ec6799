"""The public surface: sorted exports, documented names, and the plugin boundary kept."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import vidmatte

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = [
    "vidmatte",
    "vidmatte.contract",
    "vidmatte.contracts",
    "vidmatte.errors",
    "vidmatte.frames",
    "vidmatte.hookspecs",
    "vidmatte.http",
    "vidmatte.media",
    "vidmatte.testing",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_is_sorted_and_every_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    assert names == sorted(names)
    assert module.__doc__
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


def test_plugins_use_only_the_public_core_api() -> None:
    private = re.compile(r"^\s*(from|import)\s+vidmatte\._", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("plugins", "examples")
        for path in (ROOT / folder).rglob("*.py")
        if private.search(path.read_text())
    ]
    assert offenders == []


def test_the_core_never_imports_a_plugin() -> None:
    plugin = re.compile(r"^\s*(from|import)\s+vidmatte_\w+", re.M)
    offenders = [str(p) for p in (ROOT / "src").rglob("*.py") if plugin.search(p.read_text())]
    assert offenders == []


def test_importing_vidmatte_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, vidmatte; print(sorted(m for m in ('av', 'numpy', 'mediapipe', 'cv2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert vidmatte.AsyncClient.__doc__

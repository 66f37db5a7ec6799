"""Plugin loading: entry points one by one, a broken one skipped, strict mode, duplicates."""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import types
from collections.abc import Iterator

import pytest

from vidmatte import BackendSpec, PluginManager, PluginWarning, hookimpl
from vidmatte.errors import ConfigurationError, PluginLoadError


@pytest.fixture
def fake_modules() -> Iterator[None]:
    good = types.ModuleType("vm_test_good")

    @hookimpl
    def vidmatte_register_backends() -> list[BackendSpec]:
        return [BackendSpec(name="good", factory=lambda ctx: None, summary="ok")]  # type: ignore[arg-type,return-value]

    good.vidmatte_register_backends = vidmatte_register_backends  # type: ignore[attr-defined]
    keyed = types.ModuleType("vm_test_keyed")

    @hookimpl
    def vidmatte_register_backends_keyed() -> list[BackendSpec]:
        return [BackendSpec(name="keyed", factory=lambda ctx: None, needs_key=True, priority=99)]  # type: ignore[arg-type,return-value]

    keyed.vidmatte_register_backends = vidmatte_register_backends_keyed  # type: ignore[attr-defined]
    sys.modules["vm_test_good"] = good
    sys.modules["vm_test_keyed"] = keyed
    yield
    del sys.modules["vm_test_good"], sys.modules["vm_test_keyed"]


def _ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group="vidmatte")


def test_a_broken_plugin_is_skipped_with_one_warning(fake_modules: None) -> None:
    manager = PluginManager()
    with pytest.warns(PluginWarning, match="broken") as warned:
        manager.load_entry_points([_ep("broken", "vm_test_missing_module"), _ep("good", "vm_test_good")], environ={})
    assert len(warned) == 1
    assert "\n" not in str(warned[0].message)
    assert list(manager.backends) == ["good"]
    assert manager.skipped[0][0] == "broken"


def test_strict_mode_fails_on_a_broken_plugin(fake_modules: None) -> None:
    manager = PluginManager()
    with pytest.raises(PluginLoadError, match="broken"):
        manager.load_entry_points([_ep("broken", "vm_test_missing_module")], environ={"VIDMATTE_STRICT_PLUGINS": "1"})


def test_duplicate_entry_points_load_once(fake_modules: None) -> None:
    manager = PluginManager()
    manager.load_entry_points([_ep("good", "vm_test_good"), _ep("good", "vm_test_good")], environ={})
    assert list(manager.backends) == ["good"]


def test_allow_and_block_lists(fake_modules: None) -> None:
    only = PluginManager()
    only.load_entry_points(
        [_ep("good", "vm_test_good"), _ep("keyed", "vm_test_keyed")], environ={"VIDMATTE_PLUGINS": "keyed"}
    )
    assert list(only.backends) == ["keyed"]
    blocked = PluginManager()
    blocked.load_entry_points(
        [_ep("good", "vm_test_good"), _ep("keyed", "vm_test_keyed")], environ={"VIDMATTE_DISABLE_PLUGINS": "keyed"}
    )
    assert list(blocked.backends) == ["good"]


def test_the_default_is_the_best_keyless_backend(fake_modules: None) -> None:
    manager = PluginManager()
    manager.load_entry_points([_ep("good", "vm_test_good"), _ep("keyed", "vm_test_keyed")], environ={})
    assert manager.default_backend() == "good"
    with pytest.raises(ConfigurationError, match=r"unknown backend 'nope'.*good"):
        manager.backend_spec("nope")


def test_installed_in_tree_plugins_are_found_through_entry_points() -> None:
    from vidmatte import load_plugins

    manager = load_plugins(environ={})
    assert "local" in manager.backends
    assert manager.backends["local"].distribution == "vidmatte-local"
    assert "http" in manager.uploaders

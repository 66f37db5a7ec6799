"""Finding and loading plugins: entry points, one at a time, a broken one skipped."""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, cast

import attrs
import pluggy

from vidmatte import hookspecs
from vidmatte.contract import BackendSpec, UploaderSpec
from vidmatte.errors import ConfigurationError, PluginLoadError

__all__ = ["PluginManager", "PluginWarning", "load_plugins"]

_log = logging.getLogger("vidmatte")

STRICT_ENV = "VIDMATTE_STRICT_PLUGINS"
"""Set to 1 to turn a broken plugin into an error (for CI)."""
ONLY_ENV = "VIDMATTE_PLUGINS"
"""Comma-separated entry-point names: load only these."""
DISABLE_ENV = "VIDMATTE_DISABLE_PLUGINS"
"""Comma-separated entry-point names: never load these."""


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


def _names(value: str | None) -> set[str] | None:
    if not value:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class PluginManager:
    """The loaded plugins and what they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._backends: dict[str, BackendSpec] | None = None
        self._uploaders: dict[str, UploaderSpec] | None = None
        self._dist_of: dict[int, tuple[str, str]] = {}
        self.skipped: list[tuple[str, str]] = []
        """(entry point, reason) of each plugin that failed to load."""

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (``manager.hook.vidmatte_job_event(event=...)``)."""
        return self.pm.hook

    def register(self, plugin: object, name: str | None = None, *, dist: tuple[str, str] = ("", "")) -> None:
        """Register a plugin object (a module or an instance with hook implementations)."""
        if self.pm.is_registered(plugin):
            return
        self.pm.register(plugin, name=name)
        self._dist_of[id(plugin)] = dist
        self._backends = self._uploaders = None

    def unregister(self, plugin: object) -> None:
        """Remove a plugin registered earlier."""
        self.pm.unregister(plugin)
        self._backends = self._uploaders = None

    def load_entry_points(
        self,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Load every ``vidmatte`` entry point, isolating failures.

        A plugin that fails to import or register is skipped with a one-line
        warning, or raises :class:`PluginLoadError` when ``VIDMATTE_STRICT_PLUGINS=1``.
        The same entry point seen twice (duplicate metadata) is loaded once.
        """
        env = os.environ if environ is None else environ
        strict = env.get(STRICT_ENV, "").lower() in {"1", "true", "yes"}
        only, disabled = _names(env.get(ONLY_ENV)), _names(env.get(DISABLE_ENV)) or set()
        if entry_points is None:
            entry_points = metadata.entry_points(group=hookspecs.PROJECT_NAME)
        seen: set[tuple[str, str]] = set()
        for ep in entry_points:
            if (ep.name, ep.value) in seen or (only is not None and ep.name not in only) or ep.name in disabled:
                continue
            seen.add((ep.name, ep.value))
            dist = (ep.dist.name, ep.dist.version) if ep.dist is not None else ("", "")
            try:
                plugin = ep.load()
                self.register(plugin, name=f"{ep.name}", dist=dist)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                if strict:
                    raise PluginLoadError(f"plugin {ep.name!r} failed to load: {reason}") from exc
                self.skipped.append((ep.name, reason))
                warnings.warn(f"vidmatte: skipping plugin {ep.name!r}: {reason}", PluginWarning, stacklevel=2)

    def _collect(self) -> None:
        backends: dict[str, BackendSpec] = {}
        uploaders: dict[str, UploaderSpec] = {}
        for impl in self.pm.hook.vidmatte_register_backends.get_hookimpls():
            dist_name, version = self._dist_of.get(id(impl.plugin), ("", ""))
            for spec in cast("list[BackendSpec]", impl.function() or []):
                if spec.name in backends:
                    _log.warning("backend %r registered twice; keeping the first", spec.name)
                    continue
                backends[spec.name] = attrs.evolve(
                    spec, distribution=spec.distribution or dist_name, version=spec.version or version
                )
        for impl in self.pm.hook.vidmatte_register_uploaders.get_hookimpls():
            for uploader in cast("list[UploaderSpec]", impl.function() or []):
                uploaders.setdefault(uploader.name, uploader)
        self._backends, self._uploaders = backends, uploaders

    @property
    def backends(self) -> dict[str, BackendSpec]:
        """Registered backends by name."""
        if self._backends is None:
            self._collect()
        assert self._backends is not None
        return dict(sorted(self._backends.items()))

    @property
    def uploaders(self) -> dict[str, UploaderSpec]:
        """Registered uploaders by name."""
        if self._uploaders is None:
            self._collect()
        assert self._uploaders is not None
        return dict(self._uploaders)

    def backend_spec(self, name: str) -> BackendSpec:
        """The spec of backend ``name``, or a :class:`ConfigurationError` listing the known ones."""
        try:
            return self.backends[name]
        except KeyError:
            known = ", ".join(self.backends) or "none installed"
            raise ConfigurationError(f"unknown backend {name!r} (installed: {known})") from None

    def default_backend(self) -> str | None:
        """The backend used when none is configured: the keyless one of highest priority."""
        keyless = [spec for spec in self.backends.values() if not spec.needs_key]
        if not keyless:
            return None
        return max(keyless, key=lambda spec: (spec.priority, spec.name)).name


def load_plugins(*, environ: Mapping[str, str] | None = None) -> PluginManager:
    """A :class:`PluginManager` with every installed plugin loaded."""
    from vidmatte import _uploaders

    manager = PluginManager()
    manager.register(_uploaders, name="vidmatte.uploaders", dist=("vidmatte", _version()))
    manager.load_entry_points(environ=environ)
    return manager


def _version() -> str:
    try:
        return metadata.version("vidmatte")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return ""

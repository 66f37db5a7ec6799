"""Configuration: explicit arguments > environment > ``vidmatte.toml``."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs

from vidmatte._converter import converter, describe_structure_error
from vidmatte._secrets import is_secret_name
from vidmatte.errors import ConfigurationError

__all__ = ["BudgetSettings", "Settings", "config_paths", "load_settings", "structure_settings"]

T = TypeVar("T")

CONFIG_FILE = "vidmatte.toml"


def _masked(sections: dict[str, dict[str, Any]]) -> str:
    """Sections as text with every secret-looking value masked (settings' repr must not leak)."""
    shown = {
        name: {k: "***" if is_secret_name(k) else v for k, v in section.items()} for name, section in sections.items()
    }
    return repr(shown)


@attrs.frozen
class BudgetSettings:
    """Spending limits in USD; ``None`` means no limit."""

    per_job: Decimal | None = None
    per_run: Decimal | None = None
    per_day: Decimal | None = None


@attrs.frozen
class Settings:
    """The effective configuration of a vidmatte client."""

    backend: str | None = None
    """The backend to use; ``None`` picks the offline default."""
    uploader: str | None = None
    """The uploader for backends that need a URL (``None``: the only one installed, if any)."""
    journal: str | None = None
    """Path of the SQLite journal; ``None`` for the user data directory."""
    deadline: float = 3600.0
    """Seconds a job may take, queue and processing together, before it is cancelled."""
    concurrency: int = 4
    """Jobs in flight at once in a batch."""
    budget: BudgetSettings = BudgetSettings()
    backends: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=lambda sections: _masked(sections))
    """Per-backend settings (``[backends.NAME]`` tables), validated by each backend."""
    uploaders: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=lambda sections: _masked(sections))
    """Per-uploader settings (``[uploaders.NAME]`` tables)."""
    source: str = "defaults"
    """Where the settings came from, for ``vidmatte config show``."""


_ENV_KEYS = {
    "VIDMATTE_BACKEND": "backend",
    "VIDMATTE_UPLOADER": "uploader",
    "VIDMATTE_JOURNAL": "journal",
    "VIDMATTE_DEADLINE": "deadline",
    "VIDMATTE_CONCURRENCY": "concurrency",
}

UPLOAD_URL_ENV = "VIDMATTE_UPLOAD_URL"
"""Endpoint of the built-in ``http`` uploader (same as ``[uploaders.http] url``)."""


def config_paths(cwd: Path | None = None) -> list[Path]:
    """Where ``vidmatte.toml`` is looked for, in order (``VIDMATTE_CONFIG`` overrides)."""
    explicit = os.environ.get("VIDMATTE_CONFIG")
    if explicit:
        return [Path(explicit)]
    import platformdirs

    return [
        (cwd or Path.cwd()) / CONFIG_FILE,
        Path(platformdirs.user_config_dir("vidmatte")) / CONFIG_FILE,
    ]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot be read: {exc.strerror}") from None


def structure_settings(cls: type[T], data: Mapping[str, Any], *, where: str) -> T:
    """Structure ``data`` into the attrs class ``cls``; a wrong key or value is a one-line
    :class:`ConfigurationError` naming it (``where`` prefixes the key path).

    Plugins use this for their own ``[backends.NAME]`` section.
    """
    try:
        return converter.structure(dict(data), cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, ArithmeticError) as exc:
        detail = describe_structure_error(exc, where)
        raise ConfigurationError(f"invalid configuration: {detail}") from None


def load_settings(
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    cwd: Path | None = None,
    **overrides: Any,
) -> Settings:
    """The effective settings: ``overrides`` > environment > the first TOML file found."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = "defaults"
    paths = [config_file] if config_file is not None else config_paths(cwd)
    for path in paths:
        if path.is_file():
            data = _read_toml(path)
            source = str(path)
            break
        if config_file is not None:
            raise ConfigurationError(f"configuration file {str(path)!r} does not exist")
    for variable, key in _ENV_KEYS.items():
        if env.get(variable):
            data[key] = env[variable]
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    data.pop("source", None)
    settings = structure_settings(Settings, data, where=source if source != "defaults" else "settings")
    if settings.deadline <= 0:
        raise ConfigurationError(f"invalid configuration: deadline must be positive, got {settings.deadline}")
    if settings.concurrency < 1:
        raise ConfigurationError(f"invalid configuration: concurrency must be at least 1, got {settings.concurrency}")
    return attrs.evolve(settings, source=source)

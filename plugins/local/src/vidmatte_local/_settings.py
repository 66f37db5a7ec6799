"""``[backends.local]`` settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

import vidmatte
from vidmatte.errors import ConfigurationError

__all__ = ["MODES", "LocalSettings", "load"]

MODES = ("person", "static")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class LocalSettings:
    """How the local backend mattes."""

    mode: str = attrs.field(default="person", validator=attrs.validators.in_(MODES))
    """``person`` (MediaPipe selfie segmentation) or ``static`` (background modelling)."""
    model: str = attrs.field(default="landscape", validator=attrs.validators.in_(("landscape", "general")))
    """MediaPipe model: ``landscape`` (256x144, faster) or ``general`` (256x256)."""
    workers: int = attrs.field(default=1, validator=_positive)
    """Segmentation threads (one model each)."""
    batch_size: int = attrs.field(default=8, validator=_positive)
    static_threshold: float = attrs.field(default=0.1, validator=_positive)
    """Static mode: colour difference from the background (0..1) that counts as foreground."""
    static_samples: int = attrs.field(default=31, validator=_positive)
    """Static mode: frames sampled across the clip for the median background."""


def load(settings: Mapping[str, Any]) -> LocalSettings:
    """Settings from a ``[backends.local]`` mapping (one-line ConfigurationError naming a bad key)."""
    return vidmatte.structure_settings(LocalSettings, settings, where="backends.local")


def mode_of(options: Mapping[str, Any], default: str) -> str:
    """The mode a request asks for (``options["mode"]``), or ``default``."""
    mode = options.get("mode", default)
    if mode not in MODES:
        raise ConfigurationError(f"option mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)

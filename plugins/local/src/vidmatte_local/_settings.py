"""``[backends.local]`` settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

import vidmatte
from vidmatte.errors import ConfigurationError

__all__ = ["MODES", "LocalSettings", "load"]

MODES = ("person", "static")


@attrs.frozen
class LocalSettings:
    """How the local backend mattes."""

    mode: str = "person"
    """``person`` (MediaPipe selfie segmentation) or ``static`` (background modelling)."""
    model: str = "landscape"
    """MediaPipe model: ``landscape`` (256x144, faster) or ``general`` (256x256)."""
    workers: int = 1
    """Segmentation threads (one model each)."""
    batch_size: int = 8
    static_threshold: float = 0.1
    """Static mode: colour difference from the background (0..1) that counts as foreground."""
    static_samples: int = 31
    """Static mode: frames sampled across the clip for the median background."""


def load(settings: Mapping[str, Any]) -> LocalSettings:
    """Settings from a ``[backends.local]`` mapping (one-line ConfigurationError naming a bad key)."""
    structured = vidmatte.structure_settings(LocalSettings, settings, where="backends.local")
    # Checked here rather than by attrs validators so the message names the key and the choices.
    choices: dict[str, tuple[str, ...]] = {"mode": MODES, "model": ("landscape", "general")}
    for key, allowed in choices.items():
        value = getattr(structured, key)
        if value not in allowed:
            raise ConfigurationError(
                f"invalid configuration: backends.local.{key} must be one of {', '.join(allowed)}, got {value!r}"
            )
    for key in ("workers", "batch_size", "static_threshold", "static_samples"):
        value = getattr(structured, key)
        if value <= 0:
            raise ConfigurationError(f"invalid configuration: backends.local.{key} must be positive, got {value!r}")
    return structured


def mode_of(options: Mapping[str, Any], default: str) -> str:
    """The mode a request asks for (``options["mode"]``), or ``default``."""
    mode = options.get("mode", default)
    if mode not in MODES:
        raise ConfigurationError(f"option mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)

"""``[backends.falqueue]``: where the queue is and what a second of video costs."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from vidmatte import structure_settings
from vidmatte.errors import ConfigurationError

__all__ = ["KEY_ENV", "FalQueueSettings", "load"]

KEY_ENV = "FAL_KEY"
"""Environment variable holding the API key."""


@attrs.frozen
class FalQueueSettings:
    """Settings of the falqueue backend."""

    api_key: str | None = attrs.field(default=None, repr=False)
    """Prefer the ``FAL_KEY`` environment variable; never printed."""
    base_url: str = "https://queue.fal.run"
    model: str = "fal-ai/ben/v2/video"
    """Model id (a guess: check the provider's model page)."""
    input_field: str = "video_url"
    """Body field carrying the source URL (``video_url`` is what fal-style APIs use)."""
    price_per_second: Decimal = Decimal("0.0010")
    """USD per second of video, for estimates and the final cost (prices are not in responses)."""
    timeout: float = 60.0


def load(settings: Mapping[str, Any], env: Mapping[str, str]) -> FalQueueSettings:
    """Settings from the backend's section and the environment; a missing key is one clear line."""
    parsed = structure_settings(FalQueueSettings, dict(settings), where="backends.falqueue")
    key = parsed.api_key or env.get(KEY_ENV)
    if not key:
        raise ConfigurationError(f"the falqueue backend needs an API key: set {KEY_ENV} or [backends.falqueue] api_key")
    return attrs.evolve(parsed, api_key=key)

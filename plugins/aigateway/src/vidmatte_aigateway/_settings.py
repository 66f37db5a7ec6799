"""``[backends.aigateway]``: the backend's configuration, structured and checked."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from vidmatte import structure_settings
from vidmatte.errors import ConfigurationError
from vidmatte.http import check_base_url

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MEDIA_URL",
    "DEFAULT_MODEL",
    "MEDIA_URL_ENV",
    "AigatewaySettings",
    "load_settings",
]

API_KEY_ENV = "AIGATEWAY_API_KEY"
"""Environment variable holding the gateway key (``sk-aig-...``)."""
BASE_URL_ENV = "AIGATEWAY_BASE_URL"
"""Environment variable overriding the API base URL (an emulator, a proxy)."""
MEDIA_URL_ENV = "AIGATEWAY_MEDIA_URL"
"""Environment variable overriding the media host (result files)."""

DEFAULT_BASE_URL = "https://api.aigateway.sh"
DEFAULT_MEDIA_URL = "https://media.aigateway.sh"
DEFAULT_MODEL = "prama-labs/ben-v2-video"
AUTO = "auto"
"""``input_field = "auto"``: read the input field's name from the model's schema."""

_MAX_TAG = 64


@attrs.frozen
class AigatewaySettings:
    """Configuration of the ``aigateway`` backend (``[backends.aigateway]`` in ``vidmatte.toml``).

    Settings given in the section win; the environment fills in what is missing
    (``AIGATEWAY_API_KEY``, ``AIGATEWAY_BASE_URL``, ``AIGATEWAY_MEDIA_URL``).
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    """The gateway key.  Prefer the ``AIGATEWAY_API_KEY`` environment variable."""
    base_url: str = DEFAULT_BASE_URL
    """API host; https only, except plain http on loopback (emulators)."""
    media_url: str = DEFAULT_MEDIA_URL
    """Host of result files; the Bearer key is sent only to this host and ``base_url``."""
    model: str = DEFAULT_MODEL
    tag: str | None = None
    """Spend tag sent as ``x-aig-tag`` (at most 64 characters)."""
    input_field: str = "video_url"
    """Body field carrying the input video URL (undocumented; ``"auto"`` reads the model schema)."""
    prompt: str = "remove the background"
    """Placeholder prompt: the spec marks ``prompt`` required even for this model."""
    price_per_second: Decimal = Decimal("0.0010")
    """USD per second of video (pass-through pricing)."""
    requests_per_minute: float = 600.0
    """The key's rate limit (pay-as-you-go 600; free 10)."""
    min_poll_interval: float = 3.0
    """Seconds between polls of one job; faster polls are answered 304."""
    webhook_url: str | None = None
    """Sent as ``webhook_url`` with each job when set."""
    timeout: float = 60.0
    """Seconds per HTTP request."""
    max_download_bytes: int = 8 * 1024**3
    idempotent_submit: bool = True
    """Whether the gateway returns the existing job for a repeated ``Idempotency-Key``
    (assumed: undocumented).  With ``false``, a submit whose outcome is unknown after a
    crash is left for you to check instead of being sent again."""
    retry_attempts: int = 5
    """Tries per submit, cancel or download request, the first included."""


def load_settings(settings: Mapping[str, Any], env: Mapping[str, str]) -> AigatewaySettings:
    """Structure ``[backends.aigateway]`` and the environment (which wins), and check every value.

    A missing key, a non-HTTPS host or an overlong tag is a one-line
    :class:`~vidmatte.errors.ConfigurationError`; the key itself is never quoted.
    """
    data = dict(settings)
    # The environment wins over the file, as for every vidmatte setting.
    for name, variable in (("api_key", API_KEY_ENV), ("base_url", BASE_URL_ENV), ("media_url", MEDIA_URL_ENV)):
        if env.get(variable):
            data[name] = env[variable]
    parsed = structure_settings(AigatewaySettings, data, where="backends.aigateway")
    key = (parsed.api_key or "").strip()
    if not key:
        raise ConfigurationError(
            f"the aigateway backend needs an API key: set {API_KEY_ENV} or [backends.aigateway] api_key"
        )
    if not key.isascii() or any(ch.isspace() or not ch.isprintable() for ch in key):
        # Never echo the value: it is (almost) a secret.
        raise ConfigurationError(f"{API_KEY_ENV} contains whitespace, control or non-ASCII characters")
    if parsed.tag is not None and (
        len(parsed.tag) > _MAX_TAG or not parsed.tag.isascii() or not parsed.tag.isprintable()
    ):
        # An HTTP header value: ASCII only, or the request cannot even be encoded.
        raise ConfigurationError(f"backends.aigateway.tag must be at most {_MAX_TAG} printable ASCII characters")
    if parsed.price_per_second < 0:
        raise ConfigurationError("backends.aigateway.price_per_second must not be negative")
    if not parsed.input_field.strip():
        raise ConfigurationError("backends.aigateway.input_field must not be empty")
    if parsed.requests_per_minute <= 0 or parsed.min_poll_interval < 0 or parsed.timeout <= 0:
        raise ConfigurationError(
            "backends.aigateway: requests_per_minute and timeout must be positive, min_poll_interval not negative"
        )
    if parsed.retry_attempts < 1 or parsed.max_download_bytes < 1:
        raise ConfigurationError("backends.aigateway: retry_attempts and max_download_bytes must be at least 1")
    return attrs.evolve(
        parsed,
        api_key=key,
        base_url=check_base_url(parsed.base_url, setting="backends.aigateway.base_url"),
        media_url=check_base_url(parsed.media_url, setting="backends.aigateway.media_url"),
    )

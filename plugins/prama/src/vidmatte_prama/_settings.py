"""Configuration of the Prama backend: ``[backends.prama]`` plus ``PRAMA_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from vidmatte import structure_settings
from vidmatte.errors import ConfigurationError
from vidmatte.http import check_base_url

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_PRICE_PER_IMAGE",
    "KNOWN_BASE_URLS",
    "SIZES",
    "PramaSettings",
    "load_settings",
]

API_KEY_ENV = "PRAMA_API_KEY"
"""Environment variable holding the Prama (BackgroundErase) API key."""
BASE_URL_ENV = "PRAMA_BASE_URL"
"""Environment variable overriding the base URL (an emulator on loopback, the older host)."""
DEFAULT_BASE_URL = "https://api.backgrounderase.com"
"""The host of the newer docs; the older docs use ``https://api.backgrounderase.net``."""
KNOWN_BASE_URLS = ("https://api.backgrounderase.com", "https://api.backgrounderase.net")
"""Both documented hosts; both serve ``POST /v2`` and ``GET /v2/health``."""
SIZES = ("preview", "medium", "hd", "full", "auto")
"""Documented values of the ``size`` option."""
DEFAULT_PRICE_PER_IMAGE = Decimal("0.01")
"""ASSUMPTION: Prama does not publish a per-image price (business subscriptions only).
USD 0.01 per image is a placeholder in the range of comparable image APIs; set
``price_per_image`` to your contract's price so estimates and budgets are real."""


@attrs.frozen
class PramaSettings:
    """Settings of the ``prama`` backend (TOML ``[backends.prama]``; key from ``PRAMA_API_KEY``).

    The key is never part of the repr, of errors or of logs.
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    """The ``x-api-key`` credential.  Prefer ``PRAMA_API_KEY`` or ``api_key_file`` to TOML."""
    api_key_file: str | None = None
    """A file whose first line is the key (read when neither the environment nor ``api_key`` gives one)."""
    base_url: str = DEFAULT_BASE_URL
    """``https://api.backgrounderase.com`` (newer docs) or ``https://api.backgrounderase.net`` (older
    docs); plain ``http://`` only on loopback (the emulator)."""
    size: str | None = None
    """Prama's ``size`` option (``preview``, ``medium``, ``hd``, ``full``, ``auto``); ``None`` sends none."""
    price_per_image: Decimal = DEFAULT_PRICE_PER_IMAGE
    """USD per image that returned a mask.  The default is an assumption (see ``DEFAULT_PRICE_PER_IMAGE``)."""
    concurrency: int = 8
    """Requests in flight at once."""
    requests_per_second: float | None = 10.0
    """Client-side request budget (Prama documents no limit; ``None`` for none).  The token bucket
    spends 95% of it so the provider's window and ours never collide into 429s."""
    max_side: int = 1024
    """Frames are resized so their longest side is at most this before upload (Prama infers at
    1024 x 1024 whatever it receives, and large uploads get 413)."""
    jpeg_quality: int = 85
    """JPEG quality of uploads (the official sample uses 85)."""
    request_format: str = "multipart"
    """``multipart`` (``image_file``, raw PNG back; recommended) or ``json`` (base64 body, the fallback)."""
    json_field: str = "image"
    """Field of the JSON form: ``image`` (legacy, answers JSON with a base64 ``mask``) or ``image_base64``."""
    timeout: float = 60.0
    """Seconds per request."""
    attempts: int = 5
    """Tries per frame, the first included (429 and 5xx are retried with backoff)."""

    def check(self) -> PramaSettings:
        """Return ``self``, or raise a one-line :class:`ConfigurationError` naming the first wrong value."""
        _validate(self)
        return self

    @property
    def url(self) -> str:
        """The base URL without a trailing slash."""
        return self.base_url.rstrip("/")


def _validate(settings: PramaSettings) -> None:
    """One-line :class:`ConfigurationError` naming the first wrong value."""
    check_base_url(settings.base_url, setting="backends.prama.base_url")
    checks: list[tuple[str, object, str, bool]] = [
        ("size", settings.size, f"one of {', '.join(SIZES)}", settings.size in (None, *SIZES)),
        (
            "request_format",
            settings.request_format,
            "multipart or json",
            settings.request_format in ("multipart", "json"),
        ),
        ("json_field", settings.json_field, "image or image_base64", settings.json_field in ("image", "image_base64")),
        (
            "price_per_image",
            settings.price_per_image,
            "a non-negative amount",
            settings.price_per_image.is_finite() and settings.price_per_image >= 0,
        ),
        ("jpeg_quality", settings.jpeg_quality, "between 1 and 100", 1 <= settings.jpeg_quality <= 100),
    ]
    for name in ("concurrency", "requests_per_second", "max_side", "timeout", "attempts"):
        value = getattr(settings, name)
        checks.append((name, value, "positive", value is None or value > 0))
    for name, value, wanted, ok in checks:
        if not ok:
            raise ConfigurationError(f"invalid configuration: backends.prama.{name} must be {wanted}, got {value!r}")


def load_settings(settings: Mapping[str, Any], env: Mapping[str, str], *, require_key: bool = True) -> PramaSettings:
    """Structure ``[backends.prama]`` and the environment into :class:`PramaSettings`.

    The environment wins over the file (``PRAMA_API_KEY``, ``PRAMA_BASE_URL``), as for every
    vidmatte setting.  A missing key is a one-line :class:`ConfigurationError` naming ``PRAMA_API_KEY``.
    """
    data = dict(settings)
    if env.get(API_KEY_ENV):
        data["api_key"] = env[API_KEY_ENV]
    if env.get(BASE_URL_ENV):
        data["base_url"] = env[BASE_URL_ENV]
    try:
        result = structure_settings(PramaSettings, data, where="backends.prama")
    except ConfigurationError as exc:
        # The converter quotes bad values; a key must never be one of them.
        secret = data.get("api_key")
        if isinstance(secret, str) and secret and secret in str(exc):
            raise ConfigurationError("invalid configuration: backends.prama.api_key is not a valid key") from None
        raise
    result.check()
    if not result.api_key and result.api_key_file:
        result = attrs.evolve(result, api_key=_read_key_file(result.api_key_file))
    if require_key and not result.api_key:
        raise ConfigurationError(
            f"the prama backend needs an API key: set {API_KEY_ENV} (or backends.prama.api_key_file)"
        )
    return result


def _read_key_file(path: str) -> str | None:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"backends.prama.api_key_file {path!r} cannot be read: {exc.strerror}") from None
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else None

"""Which setting and option names hold secrets: one rule for config display, reprs and the journal."""

from __future__ import annotations

import re

__all__ = ["is_secret_name"]

_SECRET_WORDS = frozenset(
    {"key", "token", "secret", "password", "passwd", "auth", "authorization", "credential", "credentials"}
    | {"signature", "sig", "cookie", "bearer", "session"}
)
_SECRET_ENDINGS = ("apikey", "accesskey", "secretkey", "token", "secret", "password")


def is_secret_name(name: str) -> bool:
    """True when a name says its value is a credential (``api_key``, ``AIGATEWAY_API_KEY``,
    ``Authorization``, ``webhookSecret``), but not for names that merely contain such
    letters (``keyframes``)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", spaced) if w]
    return any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS) for w in words)

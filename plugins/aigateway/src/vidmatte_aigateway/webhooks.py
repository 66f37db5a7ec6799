"""Verifying AIgateway webhook deliveries, from any web framework.

Two signature schemes are documented and both are accepted:

* docs: headers ``aig-signature`` (hex HMAC-SHA256) and ``aig-timestamp``
  (epoch seconds), signed over ``timestamp + "." + raw body``;
* the SDK: one header ``X-Gateway-Signature: t=<timestamp>,v1=<hex>``, signed
  over ``t + "." + raw body``.

Deliveries older (or newer) than the tolerance (5 minutes) are refused, so a
captured request cannot be replayed later.  Deliveries are retried by the
gateway (about 8 times over 24 hours): handle them idempotently, keyed by job id.

Example with any framework::

    from vidmatte_aigateway.webhooks import verify_webhook, WebhookVerificationError

    try:
        payload = verify_webhook(request.headers, await request.body(), secret)
    except WebhookVerificationError:
        return Response(status_code=400)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from vidmatte.errors import VidmatteError

__all__ = ["DEFAULT_TOLERANCE", "WebhookVerificationError", "sign_webhook", "verify_webhook"]

DEFAULT_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may be away from now (5 minutes, as documented)."""


class WebhookVerificationError(VidmatteError):
    """A webhook delivery is not authentic: no signature, a wrong one, or a stale timestamp."""


def _mac(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def _timestamp_seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise WebhookVerificationError("webhook timestamp is not a number") from None
    # GUESS: tolerate milliseconds, which some gateways send.
    return number / 1000.0 if number > 1e11 else number


def _signatures(value: str) -> list[str]:
    """Hex digests in a header value, with or without a ``sha256=``/``v1=`` prefix; comma-separated."""
    found = []
    for part in value.split(","):
        part = part.strip()
        if "=" in part:
            scheme, _, part = part.partition("=")
            if scheme.strip().lower() not in {"sha256", "v1"}:
                continue
        if part:
            found.append(part.strip().lower())
    return found


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | bytes,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Any:
    """Check a delivery's signature and age, then return its parsed JSON body.

    ``headers`` is any mapping (case is ignored), ``body`` the raw bytes as
    received (before any JSON parsing), ``now`` epoch seconds (defaults to the
    wall clock).  Raises :class:`WebhookVerificationError`; never includes the
    secret or the expected signature in the message.
    """
    if not secret:
        raise WebhookVerificationError("no webhook secret configured")
    key = secret.encode() if isinstance(secret, str) else secret
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    candidates: list[tuple[str, list[str]]] = []
    if "aig-signature" in lowered:
        if "aig-timestamp" not in lowered:
            raise WebhookVerificationError("webhook has aig-signature but no aig-timestamp")
        candidates.append((lowered["aig-timestamp"].strip(), _signatures(lowered["aig-signature"])))
    if "x-gateway-signature" in lowered:
        fields: dict[str, list[str]] = {}
        for part in lowered["x-gateway-signature"].split(","):
            name, _, value = part.strip().partition("=")
            fields.setdefault(name.strip().lower(), []).append(value.strip().lower())
        if not fields.get("t") or not fields.get("v1"):
            raise WebhookVerificationError("X-Gateway-Signature lacks t= or v1=")
        candidates.append((fields["t"][0], fields["v1"]))
    if not candidates:
        raise WebhookVerificationError("webhook carries no signature (aig-signature or X-Gateway-Signature)")
    current = time.time() if now is None else now
    for timestamp, signatures in candidates:
        expected = _mac(key, timestamp, body)
        if not any(hmac.compare_digest(expected, given) for given in signatures):
            continue
        age = current - _timestamp_seconds(timestamp)
        if abs(age) > tolerance:
            raise WebhookVerificationError(
                f"webhook timestamp is {abs(age):.0f} s away from now (limit {tolerance:.0f} s)"
            )
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookVerificationError("webhook body is not JSON") from None
    raise WebhookVerificationError("webhook signature does not match")


def sign_webhook(body: bytes, secret: str | bytes, *, timestamp: float, scheme: str = "aig") -> dict[str, str]:
    """Headers signing ``body`` as the gateway would (``scheme`` ``"aig"`` or ``"sdk"``).

    The emulator signs its deliveries with this; tests use it to build deliveries.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    stamp = str(int(timestamp))
    digest = _mac(key, stamp, body)
    if scheme == "aig":
        return {"aig-signature": digest, "aig-timestamp": stamp}
    if scheme == "sdk":
        return {"X-Gateway-Signature": f"t={stamp},v1={digest}"}
    raise ValueError(f"unknown webhook signature scheme {scheme!r} (use 'aig' or 'sdk')")

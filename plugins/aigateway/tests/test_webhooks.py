"""Webhook signatures: both documented schemes, tolerance, tampering."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from vidmatte_aigateway import WebhookVerificationError, sign_webhook, verify_webhook

SECRET = "whsec-test-secret"
BODY = json.dumps({"id": "job_1", "status": "completed", "event": "job.completed"}).encode()
NOW = 1_800_000_000.0


def test_docs_scheme_by_hand() -> None:
    stamp = str(int(NOW))
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers = {"AIG-Signature": digest, "aig-timestamp": stamp}
    assert verify_webhook(headers, BODY, SECRET, now=NOW)["status"] == "completed"


def test_sdk_scheme_by_hand() -> None:
    stamp = str(int(NOW))
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers = {"x-gateway-signature": f"t={stamp},v1=deadbeef,v1={digest}"}
    assert verify_webhook(headers, BODY, SECRET.encode(), now=NOW)["id"] == "job_1"


@pytest.mark.parametrize("scheme", ["aig", "sdk"])
def test_sign_and_verify_round_trip(scheme: str) -> None:
    headers = sign_webhook(BODY, SECRET, timestamp=NOW, scheme=scheme)
    assert verify_webhook(headers, BODY, SECRET, now=NOW + 299)["event"] == "job.completed"


@pytest.mark.parametrize("scheme", ["aig", "sdk"])
@pytest.mark.parametrize("skew", [301.0, -301.0])
def test_stale_or_future_timestamps_are_refused(scheme: str, skew: float) -> None:
    headers = sign_webhook(BODY, SECRET, timestamp=NOW, scheme=scheme)
    with pytest.raises(WebhookVerificationError, match="away from now"):
        verify_webhook(headers, BODY, SECRET, now=NOW + skew)


@pytest.mark.parametrize("scheme", ["aig", "sdk"])
def test_tampered_body_wrong_secret_are_refused(scheme: str) -> None:
    headers = sign_webhook(BODY, SECRET, timestamp=NOW, scheme=scheme)
    with pytest.raises(WebhookVerificationError, match="does not match") as caught:
        verify_webhook(headers, BODY.replace(b"completed", b"failed"), SECRET, now=NOW)
    assert SECRET not in str(caught.value)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(headers, BODY, "other-secret", now=NOW)


def test_timestamp_swap_breaks_the_signature() -> None:
    headers = sign_webhook(BODY, SECRET, timestamp=NOW - 3600)
    headers["aig-timestamp"] = str(int(NOW))
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({}, "no signature"),
        ({"aig-signature": "abc"}, "aig-timestamp"),
        ({"X-Gateway-Signature": "v1=abc"}, "t="),
        ({"aig-signature": "abc", "aig-timestamp": "yesterday"}, "does not match"),
    ],
)
def test_missing_parts(headers: dict[str, str], needle: str) -> None:
    with pytest.raises(WebhookVerificationError, match=needle):
        verify_webhook(headers, BODY, SECRET, now=NOW)


def test_no_secret_configured() -> None:
    with pytest.raises(WebhookVerificationError, match="secret"):
        verify_webhook(sign_webhook(BODY, SECRET, timestamp=NOW), BODY, "", now=NOW)


def test_signed_non_json_body() -> None:
    headers = sign_webhook(b"not json", SECRET, timestamp=NOW)
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify_webhook(headers, b"not json", SECRET, now=NOW)


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="scheme"):
        sign_webhook(BODY, SECRET, timestamp=NOW, scheme="v2")

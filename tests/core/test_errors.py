"""The error tree and the one mapping boundary from HTTP responses."""

from __future__ import annotations

import httpx
import pytest

from vidmatte import errors
from vidmatte.errors import raise_for_response, redact

KEY = "sk-aig-SECRET0123456789"


def _response(status: int, body: bytes | str = b"", headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("GET", "https://api.example.test/v1/jobs/j1")
    return httpx.Response(status, content=body, headers=headers or {}, request=request)


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, errors.RequestRejectedError, False),
        (401, errors.AuthenticationError, False),
        (402, errors.PaymentRequiredError, False),
        (403, errors.AuthenticationError, False),
        (404, errors.NotFoundError, False),
        (413, errors.RequestRejectedError, False),
        (429, errors.RateLimitedError, True),
        (500, errors.TransientError, True),
        (503, errors.TransientError, True),
    ],
)
def test_statuses_map_to_the_hierarchy(status: int, cls: type[errors.ProviderError], retryable: bool) -> None:
    body = b'{"error": {"message": "nope", "type": "some_type", "code": "some_code"}}'
    with pytest.raises(cls) as info:
        raise_for_response(_response(status, body), backend="gw", job_id="j1")
    exc = info.value
    assert isinstance(exc, errors.VidmatteError)
    assert exc.retryable is retryable
    assert (exc.backend, exc.job_id, exc.status_code) == ("gw", "j1", status)
    assert "nope" in str(exc)
    assert "some_code" in str(exc)


def test_success_and_not_modified_do_not_raise() -> None:
    raise_for_response(_response(200, b"{}"), backend="gw")
    raise_for_response(_response(304), backend="gw")


def test_retry_after_seconds_and_http_date() -> None:
    with pytest.raises(errors.RateLimitedError) as info:
        raise_for_response(_response(429, b"{}", {"Retry-After": "8"}), backend="gw")
    assert info.value.retry_after == 8.0
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert errors.parse_retry_after("soon") is None


def test_string_errors_html_pages_and_request_ids() -> None:
    with pytest.raises(errors.RequestRejectedError, match="bad video"):
        raise_for_response(_response(400, b'{"error": "bad video"}'), backend="gw")
    page = "<html><body>502 Bad Gateway</body></html>"
    with pytest.raises(errors.TransientError, match="HTML page") as info:
        raise_for_response(_response(502, page, {"content-type": "text/html", "x-request-id": "req-7"}), backend="gw")
    assert info.value.request_id == "req-7"


def test_secrets_are_redacted_from_provider_messages() -> None:
    body = f'{{"error": {{"message": "key {KEY} is invalid; Authorization: Bearer {KEY}"}}}}'
    with pytest.raises(errors.AuthenticationError) as info:
        raise_for_response(_response(401, body), backend="gw", secrets=(KEY,))
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert "***" in str(info.value)


def test_redact_catches_key_shapes_it_was_not_told_about() -> None:
    text = redact("using api_key=abcdef123456 and Bearer tok_1234567890 and sk-live-zzzzzzzz")
    assert "abcdef123456" not in text
    assert "tok_1234567890" not in text
    assert "sk-live-zzzzzzzz" not in text


def test_every_public_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.VidmatteError), name
            assert obj.__doc__, name

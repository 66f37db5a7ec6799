"""The vidmatte error tree.

Every error vidmatte raises derives from :class:`VidmatteError`::

    VidmatteError
    ├── ConfigurationError          a wrong key or value in configuration or arguments
    ├── PluginLoadError             a plugin failed to load (strict mode only)
    ├── MediaError                  input media that cannot be read, or output that cannot be written
    ├── UnsupportedCapabilityError  the backend does not offer what the request needs
    ├── BudgetExceededError         a cost hook vetoed the job before any money was spent
    ├── ProviderError               anything a provider said or failed to say
    │   ├── AuthenticationError     401/403: missing, invalid or under-scoped key
    │   ├── PaymentRequiredError    402: insufficient credits or a provider-side budget
    │   ├── NotFoundError           404: unknown job, model or file
    │   ├── RequestRejectedError    other 4xx: the request itself is wrong
    │   ├── RateLimitedError        429: carries ``retry_after`` seconds
    │   ├── TransientError          5xx, dropped connections, network trouble: retryable
    │   ├── ProtocolError           a response we cannot understand (malformed JSON, HTML page)
    │   └── JobFailedError          the provider ran the job and it failed
    └── JobTimeoutError             the job's deadline passed (the remote job was cancelled)

Each error carries its context (``backend``, ``job_id``, ``request_id``,
``status_code``, ``retryable``) so callers and logs never have to parse
messages.  Messages never contain secrets: :func:`raise_for_response` builds
them from the provider's error body, which is scrubbed of anything that looks
like a credential before it is used.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AuthenticationError",
    "BudgetExceededError",
    "ConfigurationError",
    "JobFailedError",
    "JobTimeoutError",
    "MediaError",
    "NotFoundError",
    "PaymentRequiredError",
    "PluginLoadError",
    "ProtocolError",
    "ProviderError",
    "RateLimitedError",
    "RequestRejectedError",
    "TransientError",
    "UnsupportedCapabilityError",
    "VidmatteError",
    "parse_retry_after",
    "raise_for_response",
    "redact",
]


class VidmatteError(Exception):
    """Root of every error vidmatte raises.

    ``retryable`` tells whether the same request may succeed if sent again.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        job_id: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.job_id = job_id
        self.request_id = request_id
        self.status_code = status_code
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("backend", self.backend),
                ("job", self.job_id),
                ("status", self.status_code),
                ("request", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(context)})" if context else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(VidmatteError):
    """A configuration key, value or argument is wrong; the message names it."""


class PluginLoadError(VidmatteError):
    """A plugin could not be loaded (raised only in strict mode; otherwise a warning)."""


class MediaError(VidmatteError):
    """Input media cannot be read or decoded, or an output cannot be written."""


class UnsupportedCapabilityError(VidmatteError):
    """The backend does not declare a capability the request needs."""


class BudgetExceededError(VidmatteError):
    """A budget (a cost hook) refused the job before any money was spent."""


class ProviderError(VidmatteError):
    """Base of everything a provider said, or failed to say, about a request."""


class AuthenticationError(ProviderError):
    """The provider refused the credentials (missing, invalid, or out of scope)."""


class PaymentRequiredError(ProviderError):
    """The provider wants payment: credits exhausted or a provider-side budget hit."""


class NotFoundError(ProviderError):
    """The provider does not know the job, model or file."""


class RequestRejectedError(ProviderError):
    """The provider rejected the request itself (400, 413, 422 ...); resending cannot help."""


class RateLimitedError(ProviderError):
    """The provider asked us to slow down; wait ``retry_after`` seconds when given."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class TransientError(ProviderError):
    """A failure expected to pass: 5xx, a dropped connection, a network timeout."""

    retryable = True


class ProtocolError(ProviderError):
    """The provider answered something we cannot understand (bad JSON, an HTML page)."""


class JobFailedError(ProviderError):
    """The provider ran the job and reports it failed; ``code`` is the provider's code."""

    def __init__(self, message: str, *, code: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.code = code


class JobTimeoutError(VidmatteError):
    """The job's deadline passed before it finished; the remote job was cancelled."""


# Anything shaped like a bearer token or API key: redacted from provider text we quote.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"\b(sk|pk|rk|key)[-_][A-Za-z0-9_-]{6,}"),
    re.compile(r"(?i)((?:api[-_]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&]{4,}"),
)


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with the given secrets and anything key-shaped replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as _dt

    now = _dt.datetime.now(tz=when.tzinfo or _dt.UTC)
    return max(0.0, (when - now).total_seconds())


_STATUS_CLASSES: dict[int, type[ProviderError]] = {
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: AuthenticationError,
    404: NotFoundError,
    410: NotFoundError,
    429: RateLimitedError,
}

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")


def _error_details(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(message, code, request id) from a provider error body, whatever its shape."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None, None, None
    message = code = request_id = None
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, str):
        message = error
    elif isinstance(error, dict):
        raw_message = error.get("message") or error.get("detail") or error.get("type")
        message = str(raw_message) if raw_message is not None else None
        raw_code = error.get("code") or error.get("type")
        code = str(raw_code) if raw_code is not None else None
        raw_id = error.get("request_id")
        request_id = str(raw_id) if raw_id is not None else None
    return message, code, request_id


def raise_for_response(
    response: httpx.Response,
    *,
    backend: str,
    job_id: str | None = None,
    secrets: tuple[str | None, ...] = (),
) -> None:
    """Raise the matching :class:`ProviderError` for a non-2xx/3xx ``response``.

    The one mapping boundary every plugin uses: status families become error
    classes, ``Retry-After`` becomes ``retry_after``, the provider's message and
    request id are kept, and ``secrets`` (plus anything key-shaped) are redacted.
    A 2xx or 304 response returns ``None``.
    """
    status = response.status_code
    if status < 400:
        return
    message, code, body_request_id = _error_details(response)
    request_id = body_request_id or next(
        (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
    )
    if message is None:
        content_type = response.headers.get("content-type", "")
        kind = "an HTML page" if "html" in content_type.lower() else "an unreadable body"
        message = f"HTTP {status} with {kind}"
    else:
        message = f"HTTP {status}: {message}" + (f" [{code}]" if code else "")
    message = redact(message, *secrets)
    context: dict[str, Any] = {
        "backend": backend,
        "job_id": job_id,
        "request_id": request_id,
        "status_code": status,
    }
    if status == 429:
        raise RateLimitedError(message, retry_after=parse_retry_after(response.headers.get("retry-after")), **context)
    if status >= 500 or status == 408:
        raise TransientError(message, **context)
    raise _STATUS_CLASSES.get(status, RequestRejectedError)(message, **context)

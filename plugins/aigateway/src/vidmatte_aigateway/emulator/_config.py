"""The emulator's switches: protocol variants, timing, engine, faults and accounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

__all__ = ["RUNNING_STATES", "Account", "EmulatorConfig", "Fault", "FAULT_KINDS", "ROUTES"]

RUNNING_STATES = ("processing", "running")
RESULT_FIELDS = ("result.url", "result.file_url", "result_url")
ERROR_SHAPES = ("object", "string")
CANCEL_FORMS = ("delete", "post", "both")
COST_REPORTS = ("none", "header", "usage", "both")
ENGINES = ("auto", "local", "synthetic")

ROUTES = ("submit", "poll", "cancel", "download", "signed", "models", "schema", "upload", "fetch")
"""Route names used by faults and by the request counters."""

FAULT_KINDS = ("429", "5xx", "drop", "html", "malformed", "truncate", "expire", "fail", "latency")
"""What a :class:`Fault` does to the request it hits:

* ``429``: answer 429 with ``Retry-After: retry_after``;
* ``5xx``: answer ``status`` (500 by default) with a JSON error;
* ``drop``: handle the request, then drop the connection without answering
  (a submit still creates its job: the client must retry with the same key);
* ``html``: answer ``status`` (502 by default) with a proxy's HTML error page;
* ``malformed``: answer 200 with a body that is not JSON;
* ``truncate``: (downloads) promise the whole file, send half, close;
* ``expire``: (downloads) answer 403 as for an expired signed URL;
* ``fail``: (submits) the job will fail while processing;
* ``latency``: wait ``seconds`` before answering.
"""


@attrs.define
class Fault:
    """One injected fault: hits the next ``count`` requests of ``route`` (``"*"`` for any API route)."""

    kind: str
    route: str = "*"
    count: int = 1
    status: int | None = None
    retry_after: int = 1
    seconds: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.route != "*" and self.route not in ROUTES:
            raise ValueError(f"unknown route {self.route!r} (known: {', '.join(ROUTES)})")


@attrs.define
class Account:
    """An API key's account: credits in USD (``None`` for unlimited) and its rate limit."""

    credits: Decimal | None = None
    requests_per_minute: float = 600.0


def _accounts(value: Any) -> dict[str, Account]:
    """Accounts from :class:`Account` values or plain mappings (JSON from ``POST /_emulator/config``)."""
    return {
        str(key): spec
        if isinstance(spec, Account)
        else Account(
            credits=None if spec.get("credits") is None else Decimal(str(spec["credits"])),
            requests_per_minute=float(spec.get("requests_per_minute", 600.0)),
        )
        for key, spec in dict(value).items()
    }


def _to_accounts(value: Any) -> dict[str, Account]:
    return _accounts(value)


def _default_accounts() -> dict[str, Account]:
    return {"sk-aig-emulator": Account()}


@attrs.define
class EmulatorConfig:
    """Everything switchable.  Change it at run time through ``Emulator.configure``
    or ``POST /_emulator/config`` (JSON with any of these names)."""

    running_state: str = "processing"
    """``processing`` (model page, SDK) or ``running`` (docs)."""
    result_field: str = "result.url"
    """``result.url`` (model page), ``result.file_url`` (docs) or ``result_url`` (SDK)."""
    error_shape: str = "object"
    """A failed job's ``error``: ``object`` ``{code, message}`` (docs) or ``string`` (SDK)."""
    cancel_form: str = "both"
    """``delete`` (spec, SDK), ``post`` (docs: ``POST /v1/jobs/{id}/cancel``) or ``both``."""
    cost_report: str = "none"
    """Where a completed job reports its cost: ``header`` (``X-Cost-Cents``), ``usage``
    (``usage.cost_cents`` in the record), ``both`` or ``none``."""
    model: str = "prama-labs/ben-v2-video"
    input_field: str = "video_url"
    """The field the model schema declares for the input video."""
    price_per_second: Decimal = Decimal("0.0010")
    queue_seconds: float = 1.0
    """Seconds a job waits in the queue (before the speed factor)."""
    seconds_per_video_second: float = 1.0
    """Processing time per second of video (before the speed factor)."""
    noise: float = 0.2
    """Relative noise on processing time (0.2: +-20%)."""
    speed_factor: float = 1.0
    """Multiplies every simulated duration: tests use 0.01 to run fast."""
    seed: int = 0
    engine: str = "auto"
    """``local`` (the installed ``local`` vidmatte backend), ``synthetic`` (a deterministic
    matte keyed on the frame border colour) or ``auto`` (local when installed)."""
    min_poll_interval: float = 3.0
    """Polls of one job closer together than this get 304 Not Modified (0 disables)."""
    url_ttl: float = 24 * 3600.0
    """Seconds a signed result URL stays valid."""
    latency: float = 0.0
    """Seconds added before every API answer."""
    accounts: dict[str, Account] = attrs.field(factory=_default_accounts, converter=_to_accounts)
    """Known API keys; any other key gets 401."""
    webhook_secret: str = "whsec-emulator"
    webhook_scheme: str = "aig"
    """``aig`` (``aig-signature`` + ``aig-timestamp``) or ``sdk`` (``X-Gateway-Signature``)."""
    max_upload_bytes: int = 512 * 1024**2
    strict_idempotency: bool = False
    """GUESS (undocumented): answer 422 when an ``Idempotency-Key`` comes back with a different
    body.  Off by default: the gateway may just return the first job, and a resumed client
    that re-uploads its source sends a new input URL under the old key."""

    def check(self) -> None:
        """Raise ``ValueError`` naming the first switch with an unknown value."""
        for name, allowed in (
            ("running_state", RUNNING_STATES),
            ("result_field", RESULT_FIELDS),
            ("error_shape", ERROR_SHAPES),
            ("cancel_form", CANCEL_FORMS),
            ("cost_report", COST_REPORTS),
            ("engine", ENGINES),
            ("webhook_scheme", ("aig", "sdk")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (names of fields), checking them first: a bad change changes nothing."""
        fields = attrs.fields_dict(type(self))
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in fields:
                raise ValueError(f"unknown emulator setting {name!r}")
            if name == "price_per_second":
                value = Decimal(str(value))
            elif name == "accounts":
                value = _accounts(value)
            converted[name] = value
        attrs.evolve(self, **converted).check()
        for name, value in converted.items():
            setattr(self, name, value)

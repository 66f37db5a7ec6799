"""The emulator's accounts, jobs and counters: state only, no HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from vidmatte_aigateway.emulator._config import Account, EmulatorConfig

__all__ = ["Bucket", "Job", "Stats", "sign_path"]


@attrs.define
class Bucket:
    """A key's request budget: ``rpm`` a minute, bursting to 2x for 10 s (as documented)."""

    rpm: float
    tokens: float = -1.0
    updated: float = 0.0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rpm / 6.0)

    def take(self, now: float) -> tuple[bool, dict[str, str], int]:
        """(allowed, rate-limit headers, whole seconds to wait when refused)."""
        rate = self.rpm / 60.0
        if self.tokens < 0:
            self.tokens, self.updated = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        wait = 0 if self.tokens >= 1.0 else max(1, math.ceil((1.0 - self.tokens) / rate))
        reset = wait if self.tokens < 1.0 else math.ceil((self.capacity - self.tokens) / rate)
        headers = {
            "x-ratelimit-limit-requests": str(int(self.rpm)),
            "x-ratelimit-remaining-requests": str(int(self.tokens)),
            "x-ratelimit-reset-requests": str(reset),
        }
        return allowed, headers, wait


@attrs.define(eq=False)
class Job:
    """One job as the gateway tracks it."""

    id: str
    key: str
    model: str
    input_url: str
    created_at: float
    """Epoch seconds."""
    created_mono: float
    webhook_url: str | None = None
    status: str = "queued"
    """``queued``, ``running`` (rendered per the running-state switch), ``completed``, ``failed``, ``cancelled``."""
    duration: float | None = None
    resolution: str | None = None
    queued_until: float | None = None
    done_at: float | None = None
    output: Path | None = None
    error_code: str | None = None
    error_message: str | None = None
    charged: Decimal | None = None
    must_fail: bool = False
    last_poll: float | None = None
    task: asyncio.Task[None] | None = attrs.field(default=None, repr=False)

    @property
    def terminal(self) -> bool:
        return self.status in {"completed", "failed", "cancelled"}

    def visible_status(self, now: float) -> str:
        """The status a poll at ``now`` (loop seconds) sees."""
        if self.terminal:
            return self.status
        if self.queued_until is None or now < self.queued_until:
            return "queued"
        return "running"


def sign_path(secret: bytes, path: str, expires: str) -> str:
    """The signature of a result URL's path and expiry."""
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]


@attrs.define
class Stats:
    """Counters tests read (``Emulator.stats()`` or ``GET /_emulator/stats``)."""

    submissions: int = 0
    """Jobs created (an idempotent replay of a submit creates none)."""
    idempotent_replays: int = 0
    charges: int = 0
    charged_usd: Decimal = Decimal(0)
    not_modified: int = 0
    rate_limited: int = 0
    webhooks_delivered: int = 0
    requests: Counter[str] = attrs.field(factory=Counter)
    """Requests by route name."""
    statuses: Counter[str] = attrs.field(factory=Counter)
    """Answers by HTTP status ("dropped" for dropped connections)."""
    faults: Counter[str] = attrs.field(factory=Counter)
    """Faults applied, by kind."""

    def as_dict(self, jobs: dict[str, Job]) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "submissions": self.submissions,
            "idempotent_replays": self.idempotent_replays,
            "charges": self.charges,
            "charged_usd": str(self.charged_usd),
            "not_modified": self.not_modified,
            "rate_limited": self.rate_limited,
            "webhooks_delivered": self.webhooks_delivered,
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "faults": dict(self.faults),
            "jobs": {job.id: job.status for job in jobs.values()},
        }


def new_job_id() -> str:
    """A job id shaped like the gateway's (GUESS: the real format is undocumented)."""
    return "job_" + secrets.token_hex(10)


def account_for(config: EmulatorConfig, key: str | None) -> Account | None:
    """The account of ``key``, or ``None`` when the key is unknown."""
    if not key:
        return None
    return config.accounts.get(key)


def now_wall() -> float:
    """Epoch seconds."""
    return time.time()

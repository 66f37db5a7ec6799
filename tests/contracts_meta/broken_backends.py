"""Deliberately broken variants of the falqueue example backend, each with one classic bug.

The meta-tests copy this module into a pytester sandbox and run the contract
suite over each variant: every variant must fail exactly the contract test(s)
written to catch its bug, and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from vidmatte_falqueue import FalQueueBackend
from vidmatte_falqueue._backend import STATUSES
from vidmatte_falqueue._settings import load
from vidmatte_falqueue.testing import contract_subject

from vidmatte import BackendContext, JobHandle, JobState, MattingBackend, MattingRequest
from vidmatte.contracts import BackendContractSuite, BackendSubject
from vidmatte.errors import AuthenticationError, TransientError, raise_for_response
from vidmatte.http import RetryPolicy, send


class RetriesUnauthorized(FalQueueBackend):
    """Treats 401 as "maybe the key propagates soon" and tries again."""

    async def _send(self, build: Callable[[], httpx.Request], **kwargs: Any) -> httpx.Response:
        for _ in range(3):
            try:
                return await super()._send(build, **kwargs)
            except AuthenticationError:
                await self._clock.sleep(1.0)
        return await super()._send(build, **kwargs)


class _NoRetryAfter(RetryPolicy):
    def delay(self, attempt: int, retry_after: float | None, rng: Any) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class IgnoresRetryAfter(FalQueueBackend):
    """Backs off on its own schedule, whatever Retry-After says (and keeps no limiter)."""

    async def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        job_id: str | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        return await send(
            self._client,
            build,
            backend=self.name,
            job_id=job_id,
            policy=_NoRetryAfter(attempts=5),
            clock=self._clock,
            secrets=(self._key,),
            ok_statuses=ok_statuses,
        )


class LeaksKey(FalQueueBackend):
    """Puts the key in an error message "to help debugging"."""

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        try:
            return await super().submit(request, idempotency_key=idempotency_key)
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"key {self._key} was refused", backend=exc.backend, status_code=exc.status_code
            ) from None


class TerminalChanges(FalQueueBackend):
    """Believes whatever the provider says last, even after a terminal state."""

    def _next_state(self, previous: JobState | None, reported: JobState, job_id: str) -> JobState:
        return reported

    async def poll(self, handle: JobHandle) -> Any:
        self._last.pop(handle.job_id, None)  # and forgets what it saw
        return await super().poll(handle)


class SubmitsTwice(FalQueueBackend):
    """Mints a new idempotency key for each try: a retried submit starts a second job."""

    def _submit_headers(self, idempotency_key: str) -> dict[str, str]:
        return {"Idempotency-Key": str(uuid.uuid4())}


def subject_for(cls: type[FalQueueBackend]) -> BackendSubject:
    """The falqueue subject with its factory swapped for ``cls``."""
    subject = contract_subject()

    def factory(context: BackendContext) -> MattingBackend:
        return cls(load(context.settings, context.env), context)

    return attrs.evolve(subject, spec=attrs.evolve(subject.spec, factory=factory))


VARIANTS: dict[str, type[FalQueueBackend]] = {
    "Sound": FalQueueBackend,
    "RetriesUnauthorized": RetriesUnauthorized,
    "IgnoresRetryAfter": IgnoresRetryAfter,
    "LeaksKey": LeaksKey,
    "TerminalChanges": TerminalChanges,
    "SubmitsTwice": SubmitsTwice,
}


class WritesInPlace(FalQueueBackend):
    """Streams straight into ``dest``: a reader sees half a file, a dropped connection leaves one."""

    async def _fetch(self, url: str, dest: Path, job_id: str) -> None:
        async with self._client.stream("GET", url) as response:
            if response.status_code >= 400:
                await response.aread()
                raise_for_response(response, backend=self.name, job_id=job_id, secrets=(self._key,))
            written = 0
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    written += len(chunk)
            if written != int(response.headers.get("content-length", written)):
                raise TransientError("download truncated", backend=self.name, job_id=job_id)


class CrashesOnUnknownStatus(FalQueueBackend):
    """Trusts its status table to be complete."""

    def _map_status(self, raw: str) -> JobState:
        return STATUSES[raw.upper()]


VARIANTS.update({"WritesInPlace": WritesInPlace, "CrashesOnUnknownStatus": CrashesOnUnknownStatus})


def make_suites(namespace: dict[str, Any]) -> None:
    """Define ``Test<Variant>`` contract suites in ``namespace`` (a test module's globals)."""
    for label, cls in VARIANTS.items():

        def fixture(self: Any, cls: type[FalQueueBackend] = cls) -> BackendSubject:
            return subject_for(cls)

        namespace[f"Test{label}"] = type(
            f"Test{label}",
            (BackendContractSuite,),
            {"vidmatte_subject": pytest.fixture(name="vidmatte_subject")(fixture)},
        )

"""The journal's recorder and budget guard: a plugin of the core's job and cost hooks.

Registered by the client like any plugin.  ``vidmatte_cost_estimated`` writes
the intent and reserves the estimate in one journal transaction (raising
:class:`~vidmatte.errors.BudgetExceededError` vetoes the job before anything is
sent); job events record the submit, the handle, state changes, frame
checkpoints and the written output; ``vidmatte_cost_incurred`` settles.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from vidmatte._budget import BudgetLimits
from vidmatte._journal import Journal, Step, redact_options
from vidmatte._models import Cost, JobSnapshot, JobState, MattingRequest
from vidmatte.contract import EventKind, JobEvent
from vidmatte.hookspecs import hookimpl

__all__ = ["JobContext", "JournalPlugin", "describe_request"]

_PROGRESS_EVERY = 0.5
"""Seconds between journaled progress updates of one job (progress is cheap to lose)."""


@attrs.frozen
class JobContext:
    """What the client knows of a job beyond the hooks' arguments."""

    dest: str | None = None
    input_key: str | None = None
    unit_price: Decimal | None = None
    """Price of one frame for frame backends: checkpoints then prove what was paid."""


def _source(request: MattingRequest) -> str | None:
    """The source as journaled: an absolute path (resume may run elsewhere), or a URL without its
    query string or credentials; bytes are not journaled."""
    source = request.source
    if source.path is not None:
        return str(Path(source.path).absolute())
    if source.url is not None:
        parts = urlsplit(source.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return None


def describe_request(request: MattingRequest) -> dict[str, Any]:
    """The request as journaled: output spec and options, secrets redacted, never bytes."""
    output = request.output
    background = output.background
    return {
        "format": output.format.value,
        "background": {"kind": background.kind, "colour": list(background.colour), "image": background.image},
        "keep_audio": output.keep_audio,
        "trim": list(output.trim) if output.trim else None,
        "options": redact_options(request.options),
    }


class JournalPlugin:
    """Journals every job the client runs, and guards budgets with the journal's reservations."""

    def __init__(self, journal: Journal, *, run_id: str, limits: BudgetLimits | None = None) -> None:
        self.journal = journal
        self.run_id = run_id
        self.limits = limits
        self._context: dict[str, JobContext] = {}
        self._last_progress: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"JournalPlugin({self.journal.path!r}, run={self.run_id})"

    def expect(self, job_key: str, context: JobContext) -> None:
        """Tell the journal where ``job_key``'s output goes (before it is submitted)."""
        self._context[job_key] = context

    @hookimpl
    def vidmatte_cost_estimated(self, job_key: str, backend: str, request: MattingRequest, cost: Cost) -> None:
        """Journal the intent and reserve the estimate (veto: BudgetExceededError)."""
        context = self._context.get(job_key, JobContext())
        self.journal.intend(
            job_key,
            backend=backend,
            run_id=self.run_id,
            estimate=cost.amount,
            currency=cost.currency,
            limits=self.limits,
            source=_source(request),
            dest=context.dest,
            request=describe_request(request),
            input_key=context.input_key,
            unit_price=context.unit_price,
        )

    @hookimpl
    def vidmatte_job_event(self, event: JobEvent) -> None:
        """Record the steps that matter for resuming."""
        key = event.job_key
        kind = event.kind
        if kind is EventKind.SUBMITTING:
            self.journal.submitting(key)
        elif kind is EventKind.SUBMITTED and event.handle is not None:
            self.journal.submitted(key, event.handle)
        elif kind is EventKind.STATE_CHANGED and event.snapshot is not None:
            self._state(key, event.snapshot)
        elif kind is EventKind.CHECKPOINT:
            calls = event.data.get("calls")
            if calls is not None:
                matted = event.data.get("frames_matted")
                self.journal.checkpoint(
                    key,
                    calls=int(calls),
                    frames_matted=None if matted is None else int(matted),
                    detail=str(event.data.get("chunk", "")),
                )
        elif kind is EventKind.PROGRESS and event.frames_total:
            now = time.monotonic()
            if now - self._last_progress.get(key, 0.0) >= _PROGRESS_EVERY:
                self._last_progress[key] = now
                self.journal.progress(key, event.frames_done, event.frames_total)
        elif kind is EventKind.FINISHED and event.snapshot is not None:
            snapshot = event.snapshot
            self._state(key, snapshot)
            if snapshot.state is not JobState.SUCCEEDED:
                error = snapshot.error.message if snapshot.error else f"the job ended {snapshot.state.value}"
                self.journal.done(key, error=error)
        elif kind is EventKind.DOWNLOADED and "sha256" in event.data:
            # The client's own event (a frame backend's carries only a path): the output is complete.
            self.journal.done(key, sha256=event.data.get("sha256"))

    def _state(self, key: str, snapshot: JobSnapshot) -> None:
        error = snapshot.error.message if snapshot.error else None
        self.journal.state(key, snapshot.state, raw_status=snapshot.raw_status, error=error)

    @hookimpl
    def vidmatte_cost_incurred(self, job_key: str, backend: str, cost: Cost, snapshot: JobSnapshot | None) -> None:
        """Settle the reservation against what the job cost (or release it when it never ran)."""
        record = self.journal.get(job_key)
        if record is None:
            return
        never_ran = snapshot is None and record.handle is None and record.step in (Step.INTENT, Step.SUBMITTING)
        if never_ran and cost.amount == 0:
            self.journal.refuse(job_key, "refused before it ran")
            return
        self.journal.settle(job_key, cost.amount, currency=cost.currency)

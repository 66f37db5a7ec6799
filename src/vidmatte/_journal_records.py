"""What the journal holds, as values: job records, steps, redaction, and process ownership."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from vidmatte._models import JobHandle, JobState
from vidmatte._secrets import is_secret_name

__all__ = ["JobRecord", "Step", "alive", "default_journal_path", "record_of", "redact_options", "this_process"]


class Step:
    """How far a job got; the names stored in the journal's ``step`` column."""

    INTENT = "intent"
    """Reserved and journaled; the submit has not been sent."""
    SUBMITTING = "submitting"
    """The submit may have been sent: its outcome is unknown until reconciled."""
    SUBMITTED = "submitted"
    """The backend accepted it; the handle is journaled."""
    FINISHED = "finished"
    """Terminal at the backend (state says which); the output may still need writing."""
    DONE = "done"
    """The output is written and checksummed (or the job ended without one)."""
    REFUSED = "refused"
    """Never ran: vetoed by a budget or refused by the backend.  Nothing was spent."""

    UNFINISHED = (INTENT, SUBMITTING, SUBMITTED, FINISHED)


def default_journal_path() -> Path:
    """``journal.sqlite`` in the user data directory."""
    import platformdirs

    return Path(platformdirs.user_data_dir("vidmatte")) / "journal.sqlite"


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with every value whose name looks secret replaced by ``"***"`` (nested too)."""
    clean: dict[str, Any] = {}
    for name, value in options.items():
        if is_secret_name(str(name)):
            clean[str(name)] = "***"
        elif isinstance(value, Mapping):
            clean[str(name)] = redact_options(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            clean[str(name)] = value
        else:
            clean[str(name)] = str(value)
    return clean


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@attrs.frozen
class JobRecord:
    """One journaled job, as the journal last saw it."""

    job_key: str
    input_key: str | None
    run_id: str
    backend: str
    source: str | None
    dest: str | None
    request: dict[str, Any]
    step: str
    state: JobState
    handle: JobHandle | None
    estimate: Decimal
    reserved: Decimal
    actual: Decimal | None
    currency: str
    unit_price: Decimal | None
    day: str
    output_sha256: str | None
    error: str | None
    attempts: int
    calls: int
    """Frames paid for, from the frame checkpoints: masks kept on disk (they are never bought
    again), or the calls of each attempt added up, whichever is more."""
    frames_done: int | None
    frames_total: int | None
    created_at: float
    updated_at: float
    owner: str | None = None
    """``host:pid`` of the process that last ran the job."""

    @property
    def finished(self) -> bool:
        """True when nothing is left to do for this job."""
        return self.step in (Step.DONE, Step.REFUSED)

    @property
    def spent(self) -> Decimal:
        """Money this job has cost so far: settled, else what checkpoints prove was paid."""
        if self.actual is not None:
            return self.actual
        if self.unit_price is not None:
            return self.unit_price * self.calls
        return Decimal(0)

    @property
    def committed(self) -> Decimal:
        """What the budget counts: the settled cost, else the larger of reservation and spend."""
        if self.actual is not None:
            return self.actual
        return max(self.reserved, self.spent)

    @property
    def succeeded(self) -> bool:
        """True when the output was written."""
        return self.step == Step.DONE and self.state is JobState.SUCCEEDED


def record_of(row: sqlite3.Row) -> JobRecord:
    handle = JobHandle.from_json(row["handle"]) if row["handle"] else None
    return JobRecord(
        job_key=row["job_key"],
        input_key=row["input_key"],
        run_id=row["run_id"],
        backend=row["backend"],
        source=row["source"],
        dest=row["dest"],
        request=json.loads(row["request"] or "{}"),
        step=row["step"],
        state=JobState(row["state"]),
        handle=handle,
        estimate=Decimal(row["estimate"]),
        reserved=Decimal(row["reserved"]),
        actual=_decimal(row["actual"]),
        currency=row["currency"],
        unit_price=_decimal(row["unit_price"]),
        day=row["day"],
        output_sha256=row["output_sha256"],
        error=row["error"],
        attempts=row["attempts"],
        calls=max(int(row["calls"] or 0), int(row["frames_paid"] or 0)),
        frames_done=row["frames_done"],
        frames_total=row["frames_total"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        owner=row["owner"],
    )


_HOST = socket.gethostname()
_FOREIGN_LEASE = 600.0
"""Seconds a job last touched by a process on another host is taken to be still in its hands."""


def this_process() -> str:
    """The owner name of jobs this process runs: ``host:pid``."""
    return f"{_HOST}:{os.getpid()}"


def alive(owner: str | None, updated_at: float, now: float) -> bool:
    """True when ``owner`` (``host:pid``) may still be running the job."""
    if not owner or owner == this_process():
        return False
    host, _, pid = owner.rpartition(":")
    if host != _HOST:
        return now - updated_at < _FOREIGN_LEASE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True

"""The journal: every paid step of every job, in SQLite, before it happens.

One row per logical job (keyed by its idempotency key) and an append-only
event log.  The row is written before each step that can cost money or lose
work: the intent and the budget reservation before submit (one ``BEGIN
IMMEDIATE`` transaction, so reservations hold across threads and processes
sharing the file), the handle after it, every state change, frame checkpoints,
the downloaded output and its SHA-256, and the settled cost.  Resume and
``vidmatte spend`` read nothing else.

WAL mode keeps readers and one writer out of each other's way; a busy timeout
waits out short locks.  ``synchronous=NORMAL`` survives a killed process (what
the journal is for); only a power cut can lose the last commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from vidmatte._budget import BudgetLimits, Committed, check_reservation
from vidmatte._journal_records import (
    JobRecord,
    Step,
    alive,
    default_journal_path,
    record_of,
    redact_options,
    this_process,
)
from vidmatte._models import JobHandle, JobState
from vidmatte.errors import VidmatteError

__all__ = [
    "MEMORY",
    "JobRecord",
    "Journal",
    "JournalError",
    "Step",
    "default_journal_path",
    "redact_options",
]

MEMORY = ":memory:"
"""The path of a journal kept only for the life of the process (budgets without a file)."""

_SCHEMA_VERSION = 1
_BUSY_TIMEOUT = 15.0
"""Seconds a write waits for another process's transaction before the journal is reported locked."""

_ADDED_COLUMNS = {"frames_paid": "INTEGER NOT NULL DEFAULT 0", "owner": "TEXT"}
"""Columns of ``jobs`` added after schema 1 was first written, and their types."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_key TEXT PRIMARY KEY,
    input_key TEXT,
    run_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    source TEXT,
    dest TEXT,
    request TEXT NOT NULL DEFAULT '{}',
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    handle TEXT,
    estimate TEXT NOT NULL DEFAULT '0',
    reserved TEXT NOT NULL DEFAULT '0',
    actual TEXT,
    currency TEXT NOT NULL DEFAULT 'USD',
    unit_price TEXT,
    day TEXT NOT NULL,
    output_sha256 TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER,
    frames_total INTEGER,
    frames_paid INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_input ON jobs (input_key);
CREATE INDEX IF NOT EXISTS jobs_step ON jobs (step);
CREATE INDEX IF NOT EXISTS jobs_day ON jobs (day);
CREATE TABLE IF NOT EXISTS attempts (
    job_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_key, attempt)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_key);
"""


class JournalError(VidmatteError):
    """The journal cannot be opened, read or written (corrupt, locked, unwritable)."""


_SELECT = """
SELECT jobs.*, (SELECT COALESCE(SUM(calls), 0) FROM attempts WHERE attempts.job_key = jobs.job_key) AS calls
FROM jobs
"""


def _today(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()


class Journal:
    """The journal file (or an in-memory one): thread-safe, safe across processes.

    Open it with :meth:`open`; every error is a one-line :class:`JournalError`.
    """

    def __init__(self, conn: sqlite3.Connection, path: str, busy_timeout: float = _BUSY_TIMEOUT) -> None:
        self._conn = conn
        self.path = path
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | None = None, *, busy_timeout: float = _BUSY_TIMEOUT) -> Journal:
        """Open (creating when missing) the journal at ``path`` (default: the user data dir).

        ``busy_timeout`` is how long a write waits for another process before the
        journal is reported locked.
        """
        where = str(path) if path is not None else str(default_journal_path())
        if where != MEMORY:
            folder = Path(where).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JournalError(f"journal {where!r}: cannot create its folder ({exc.strerror})") from None
            if Path(where).is_dir():
                raise JournalError(f"journal {where!r} is a folder, not a file")
        try:
            conn = sqlite3.connect(where, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {where!r} cannot be opened ({exc})") from None
        journal = cls(conn, where, busy_timeout)
        try:
            journal._setup()
        except JournalError:
            conn.close()
            raise
        return journal

    def _setup(self) -> None:
        conn = self._conn
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self.path != MEMORY:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise JournalError(f"journal {self.path!r}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            version = self._schema_version()
            if version is None:
                # Only a new journal needs the write lock here: opening one another process is
                # writing to (to list jobs, say) must not wait for it.
                with self._write():
                    for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                        conn.execute(statement)
                    if self._schema_version() is None:
                        conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
            elif version > _SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path!r} was written by a newer vidmatte (schema {version}); upgrade vidmatte"
                )
            self._add_columns()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _add_columns(self) -> None:
        """Columns added to the schema since a journal was made (a journal is never rewritten)."""
        present = {row["name"] for row in self._conn.execute("PRAGMA table_info(jobs)")}
        missing = {name: kind for name, kind in _ADDED_COLUMNS.items() if name not in present}
        if missing:
            with self._write() as conn:
                present = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
                for name, kind in missing.items():
                    if name not in present:
                        conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def _schema_version(self) -> int | None:
        exists = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if exists is None:
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return None if row is None else int(row[0])

    def _error(self, exc: sqlite3.Error) -> JournalError:
        text = str(exc)
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            return JournalError(
                f"journal {self.path!r} is locked by another process (waited {self.busy_timeout:g} s); "
                "try again when it finishes"
            )
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            return JournalError(
                f"journal {self.path!r} is corrupt ({text}); move it aside to start a new one "
                "(it holds the record of what was paid)"
            )
        if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
            return JournalError(f"journal {self.path!r} cannot be written ({text})")
        if "disk" in lowered and "full" in lowered:
            return JournalError(f"journal {self.path!r}: the disk is full ({text})")
        return JournalError(f"journal {self.path!r}: {text}")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken at the start."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            try:
                yield conn
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):  # the transaction may already be gone
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    # Every write maps the database's errors here, once, into one-line JournalErrors.
                    raise self._error(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._write() as conn:
            conn.execute(sql, params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def _event(self, conn: sqlite3.Connection, job_key: str, kind: str, now: float, **detail: Any) -> None:
        conn.execute(
            "INSERT INTO events (job_key, at, kind, detail) VALUES (?, ?, ?, ?)",
            (job_key, now, kind, json.dumps(detail, sort_keys=True, default=str)),
        )

    # -- writing -----------------------------------------------------------------------

    def intend(
        self,
        job_key: str,
        *,
        backend: str,
        run_id: str,
        estimate: Decimal,
        currency: str = "USD",
        limits: BudgetLimits | None = None,
        source: str | None = None,
        dest: str | None = None,
        request: Mapping[str, Any] | None = None,
        input_key: str | None = None,
        unit_price: Decimal | None = None,
        now: float | None = None,
    ) -> JobRecord:
        """Journal the intent to submit and reserve ``estimate`` against ``limits``, atomically.

        Raises :class:`~vidmatte.errors.BudgetExceededError` (nothing written) when
        the reservation would break a limit, counting every job of the day and of
        the run in this file, whichever process journaled it.  A job already
        journaled keeps its reservation (a resume never reserves twice).
        """
        now = time.time() if now is None else now
        day = _today(now)
        with self._write() as conn:
            existing = conn.execute(_SELECT + " WHERE job_key = ?", (job_key,)).fetchone()
            if existing is not None and existing["step"] != Step.REFUSED:
                conn.execute("UPDATE jobs SET updated_at = ? WHERE job_key = ?", (now, job_key))
                self._event(conn, job_key, "intent-again", now)
                return record_of(conn.execute(_SELECT + " WHERE job_key = ?", (job_key,)).fetchone())
            if input_key is not None:
                self._claim(conn, job_key, input_key)
            if limits is not None and limits.any:
                rows = conn.execute(_SELECT + " WHERE day = ? OR run_id = ?", (day, run_id)).fetchall()
                records = [record_of(row) for row in rows]
                committed = Committed(
                    day=sum((r.committed for r in records if r.day == day), Decimal(0)),
                    run=sum((r.committed for r in records if r.run_id == run_id), Decimal(0)),
                )
                check_reservation(estimate, limits, committed, currency=currency)
            conn.execute("DELETE FROM jobs WHERE job_key = ? AND step = ?", (job_key, Step.REFUSED))
            conn.execute(
                """INSERT INTO jobs (job_key, input_key, run_id, backend, source, dest, request, step, state,
                    estimate, reserved, currency, unit_price, day, created_at, updated_at, owner)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    job_key,
                    input_key,
                    run_id,
                    backend,
                    source,
                    dest,
                    json.dumps(dict(request or {}), sort_keys=True, default=str),
                    Step.INTENT,
                    JobState.PENDING.value,
                    str(estimate),
                    str(estimate),
                    currency,
                    None if unit_price is None else str(unit_price),
                    day,
                    now,
                    now,
                    this_process(),
                ),
            )
            self._event(conn, job_key, "intent", now, estimate=str(estimate), reserved=str(estimate))
            return record_of(conn.execute(_SELECT + " WHERE job_key = ?", (job_key,)).fetchone())

    def _claim(self, conn: sqlite3.Connection, job_key: str, input_key: str) -> None:
        """One live job per batch input, whichever process asks: checked inside the write lock."""
        marks = ", ".join("?" for _ in Step.UNFINISHED)
        other = conn.execute(
            f"""SELECT job_key, step FROM jobs WHERE input_key = ? AND job_key != ?
                AND (step IN ({marks}) OR (step = ? AND state = ?)) LIMIT 1""",
            (input_key, job_key, *Step.UNFINISHED, Step.DONE, JobState.SUCCEEDED.value),
        ).fetchone()
        if other is not None:
            raise JournalError(
                f"this input is already handled by job {other['job_key'][:12]} ({other['step']}), "
                "maybe by another process; it is not submitted twice"
            )

    def take(self, job_key: str, *, now: float | None = None) -> None:
        """Become the process running ``job_key`` (to resume it); a :class:`JournalError` when
        another live process still runs it, so two processes never run (and pay for) one job."""
        now = time.time() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT owner, updated_at FROM jobs WHERE job_key = ?", (job_key,)).fetchone()
            if row is None:
                return
            if alive(row["owner"], row["updated_at"], now):
                raise JournalError(
                    f"job {job_key[:12]} is being run by process {row['owner']}; resume it when that process has ended"
                )
            conn.execute("UPDATE jobs SET owner = ?, updated_at = ? WHERE job_key = ?", (this_process(), now, job_key))
            self._event(conn, job_key, "taken", now, owner=this_process(), previous=row["owner"])

    def refuse(self, job_key: str, reason: str, *, now: float | None = None) -> None:
        """The job never ran (vetoed or refused): release its reservation."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                """UPDATE jobs SET step = ?, reserved = '0', actual = '0', error = ?, updated_at = ?
                   WHERE job_key = ? AND step IN (?, ?)""",
                (Step.REFUSED, reason, now, job_key, Step.INTENT, Step.SUBMITTING),
            )
            self._event(conn, job_key, "refused", now, reason=reason)

    def submitting(self, job_key: str, *, now: float | None = None) -> int:
        """The submit is about to be sent (a new attempt); returns the attempt number."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                """UPDATE jobs SET attempts = attempts + 1, updated_at = ?,
                   step = CASE WHEN step = ? THEN ? ELSE step END WHERE job_key = ?""",
                (now, Step.INTENT, Step.SUBMITTING, job_key),
            )
            row = conn.execute("SELECT attempts FROM jobs WHERE job_key = ?", (job_key,)).fetchone()
            attempt = int(row[0]) if row else 0
            self._event(conn, job_key, "submitting", now, attempt=attempt)
            return attempt

    def submitted(self, job_key: str, handle: JobHandle, *, now: float | None = None) -> None:
        """The backend accepted the job: keep its handle."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                """UPDATE jobs SET handle = ?, updated_at = ?,
                   step = CASE WHEN step IN (?, ?) THEN ? ELSE step END,
                   state = CASE WHEN state = ? THEN ? ELSE state END
                   WHERE job_key = ?""",
                (
                    handle.to_json(),
                    now,
                    Step.INTENT,
                    Step.SUBMITTING,
                    Step.SUBMITTED,
                    JobState.PENDING.value,
                    JobState.QUEUED.value,
                    job_key,
                ),
            )
            self._event(conn, job_key, "submitted", now, job_id=handle.job_id)

    def state(
        self,
        job_key: str,
        state: JobState,
        *,
        raw_status: str | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> None:
        """A state change seen by a poll (terminal states move the job to ``finished``)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT step, state FROM jobs WHERE job_key = ?", (job_key,)).fetchone()
            if row is None or row["step"] in (Step.DONE, Step.REFUSED):
                return
            step = row["step"]
            if state.is_terminal:
                step = Step.FINISHED
            elif step in (Step.INTENT, Step.SUBMITTING):
                step = Step.SUBMITTED
            conn.execute(
                "UPDATE jobs SET state = ?, step = ?, error = COALESCE(?, error), updated_at = ? WHERE job_key = ?",
                (state.value, step, error, now, job_key),
            )
            self._event(conn, job_key, "state", now, state=state.value, raw=raw_status, error=error)

    def progress(self, job_key: str, frames_done: int | None, frames_total: int | None) -> None:
        """Frames encoded so far (no event row: progress is frequent and cheap to lose)."""
        self._run(
            """UPDATE jobs SET frames_done = COALESCE(?, frames_done), frames_total = COALESCE(?, frames_total)
               WHERE job_key = ?""",
            (frames_done, frames_total, job_key),
        )

    def checkpoint(self, job_key: str, *, calls: int, frames_matted: int | None = None, detail: str = "") -> None:
        """A frame checkpoint: ``calls`` frames paid for by the current attempt so far, and
        ``frames_matted`` masks kept in all (by every attempt: a backend may resume a job by
        itself, without a new submit, so attempts alone could miss a run)."""
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT attempts FROM jobs WHERE job_key = ?", (job_key,)).fetchone()
            if row is None:
                return
            attempt = max(1, int(row[0]))
            conn.execute(
                """INSERT INTO attempts (job_key, attempt, calls) VALUES (?, ?, ?)
                   ON CONFLICT (job_key, attempt) DO UPDATE SET calls = MAX(calls, excluded.calls)""",
                (job_key, attempt, calls),
            )
            if frames_matted is not None:
                conn.execute(
                    "UPDATE jobs SET frames_paid = MAX(frames_paid, ?) WHERE job_key = ?", (frames_matted, job_key)
                )
            self._event(
                conn, job_key, "checkpoint", now, attempt=attempt, calls=calls, matted=frames_matted, chunk=detail
            )

    def settle(self, job_key: str, amount: Decimal, *, currency: str = "USD", now: float | None = None) -> Decimal:
        """Record the job's actual cost (its reservation is released); returns what was recorded.

        For frame jobs the checkpoints are the truth: the frames paid for in every
        attempt, crashed ones included, at the journaled unit price.
        """
        now = time.time() if now is None else now
        with self._write() as conn:
            row = conn.execute(_SELECT + " WHERE job_key = ?", (job_key,)).fetchone()
            if row is None:
                return amount
            record = record_of(row)
            if record.unit_price is not None and record.calls:
                amount = record.unit_price * record.calls
            conn.execute(
                "UPDATE jobs SET actual = ?, currency = ?, updated_at = ? WHERE job_key = ?",
                (str(amount), currency, now, job_key),
            )
            self._event(conn, job_key, "settled", now, actual=str(amount), reserved=str(record.reserved))
            return amount

    def done(
        self,
        job_key: str,
        *,
        sha256: str | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> None:
        """Nothing is left to do: the output is written (``sha256``) or the job ended without one."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                """UPDATE jobs SET step = ?, output_sha256 = COALESCE(?, output_sha256),
                   error = COALESCE(?, error), updated_at = ? WHERE job_key = ?""",
                (Step.DONE, sha256, error, now, job_key),
            )
            self._event(conn, job_key, "done", now, sha256=sha256, error=error)

    def reopen(self, job_key: str, *, now: float | None = None) -> None:
        """Make a failed job of an in-process backend unfinished again, to run it once more under
        the same key (its checkpoints make the frames already paid for free)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                """UPDATE jobs SET step = ?, state = ?, actual = NULL, updated_at = ?
                   WHERE job_key = ? AND step = ?""",
                (Step.SUBMITTING, JobState.PENDING.value, now, job_key, Step.DONE),
            )
            self._event(conn, job_key, "reopened", now)

    def note(self, job_key: str, error: str, *, now: float | None = None) -> None:
        """Remember why the last try of an unfinished job stopped (shown by ``vidmatte jobs``)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute("UPDATE jobs SET error = ?, updated_at = ? WHERE job_key = ?", (error, now, job_key))
            self._event(conn, job_key, "error", now, error=error)

    # -- reading -----------------------------------------------------------------------

    def get(self, job_key: str) -> JobRecord | None:
        """The job journaled under ``job_key``."""
        rows = self._query(_SELECT + " WHERE job_key = ?", (job_key,))
        return record_of(rows[0]) if rows else None

    def by_input(self, input_key: str) -> list[JobRecord]:
        """Every job journaled for a batch input, oldest first."""
        rows = self._query(_SELECT + " WHERE input_key = ? ORDER BY created_at, rowid", (input_key,))
        return [record_of(row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        """Jobs with work left (submitted or not, output not written), oldest first."""
        marks = ", ".join("?" for _ in Step.UNFINISHED)
        rows = self._query(_SELECT + f" WHERE step IN ({marks}) ORDER BY created_at, rowid", Step.UNFINISHED)
        return [record_of(row) for row in rows]

    def jobs(self, *, limit: int | None = None) -> list[JobRecord]:
        """Journaled jobs, newest first."""
        sql = _SELECT + " ORDER BY created_at DESC, rowid DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [record_of(row) for row in self._query(sql, params)]

    def events(self, job_key: str) -> list[tuple[str, dict[str, Any]]]:
        """The event log of one job: (kind, detail), in order."""
        rows = self._query("SELECT kind, detail FROM events WHERE job_key = ? ORDER BY id", (job_key,))
        return [(row["kind"], json.loads(row["detail"])) for row in rows]

    def total_spent(self) -> Decimal:
        """Money spent by every journaled job (settled costs, plus paid checkpoints of unsettled ones)."""
        return sum((record.spent for record in self.jobs()), Decimal(0))

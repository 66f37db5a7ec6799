"""The journal file: what it records, in what order, and how it fails (one line, nothing lost)."""

from __future__ import annotations

import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from journal_fakes import PRICE, FakeProvider, fake_plugins

import vidmatte
from vidmatte import AsyncClient, JobHandle, JobState
from vidmatte._journal import MEMORY, Journal, JournalError, Step, redact_options
from vidmatte.testing import run_virtual


def test_a_new_journal_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "journal.sqlite"
    with Journal.open(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "1"
    finally:
        conn.close()


def test_every_step_is_recorded_in_order(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite") as journal:
        journal.intend("k1", backend="b", run_id="r", estimate=Decimal("0.5"), dest="/out.webm", input_key="in-1")
        assert journal.submitting("k1") == 1
        handle = JobHandle("b", "job-9", 1.0, 2.0, {"x": "y"})
        journal.submitted("k1", handle)
        journal.state("k1", JobState.RUNNING, raw_status="processing")
        journal.checkpoint("k1", calls=3, frames_matted=3)
        journal.state("k1", JobState.SUCCEEDED, raw_status="completed")
        assert journal.settle("k1", Decimal("0.4")) == Decimal("0.4")
        journal.done("k1", sha256="ab" * 32)
        record = journal.get("k1")
        assert record is not None
        assert record.handle == handle
        assert (record.step, record.state, record.actual, record.reserved) == (
            Step.DONE,
            JobState.SUCCEEDED,
            Decimal("0.4"),
            Decimal("0.5"),
        )
        assert record.succeeded
        assert record.finished
        assert record.committed == record.spent == Decimal("0.4")  # settled: the reservation no longer counts
        assert [kind for kind, _ in journal.events("k1")] == [
            "intent",
            "submitting",
            "submitted",
            "state",
            "checkpoint",
            "state",
            "settled",
            "done",
        ]
        assert journal.by_input("in-1") == [record]
        assert journal.unfinished() == []


def test_unsettled_jobs_count_their_reservation_or_what_checkpoints_prove(tmp_path: Path) -> None:
    with Journal.open(MEMORY) as journal:
        journal.intend("k", backend="b", run_id="r", estimate=Decimal("0.05"), unit_price=Decimal("0.01"))
        journal.submitting("k")
        journal.checkpoint("k", calls=2)
        record = journal.get("k")
        assert record is not None
        assert (record.spent, record.committed) == (Decimal("0.02"), Decimal("0.05"))
        journal.checkpoint("k", calls=7)  # more frames than estimated: the proof wins
        journal.submitting("k")  # a resumed attempt counts its own frames
        journal.checkpoint("k", calls=1)
        record = journal.get("k")
        assert record is not None
        assert (record.calls, record.spent, record.committed) == (8, Decimal("0.08"), Decimal("0.08"))
        # Settling a frame job trusts the checkpoints over the last attempt's own report.
        assert journal.settle("k", Decimal("0.01")) == Decimal("0.08")


def test_masks_kept_count_when_a_backend_resumes_a_job_by_itself() -> None:
    # No new submit marks the second run (the backend resumed the job on a poll); its calls
    # start again from 1, but the masks kept on disk still count every frame paid for.
    with Journal.open(MEMORY) as journal:
        journal.intend("k", backend="b", run_id="r", estimate=Decimal("0.10"), unit_price=Decimal("0.01"))
        journal.submitting("k")
        for calls in (1, 2, 3):
            journal.checkpoint("k", calls=calls, frames_matted=calls)
        for calls in (1, 2):
            journal.checkpoint("k", calls=calls, frames_matted=3 + calls)
        record = journal.get("k")
        assert record is not None
        assert record.calls == 5
        assert journal.settle("k", Decimal("0.02")) == Decimal("0.05")


def test_a_journaled_job_keeps_its_one_reservation_when_submitted_again(tmp_path: Path) -> None:
    with Journal.open(MEMORY) as journal:
        first = journal.intend("k", backend="b", run_id="r1", estimate=Decimal("1"))
        again = journal.intend("k", backend="b", run_id="r2", estimate=Decimal("3"))
        assert (again.reserved, again.run_id, again.created_at) == (first.reserved, "r1", first.created_at)


def test_secrets_never_reach_the_journal(tmp_path: Path) -> None:
    secret = "sk-live-9f8e7d6c5b4a"
    options = {"api_key": secret, "nested": {"Authorization": secret, "size": "hd"}, "webhookSecret": secret}
    assert redact_options({**options, "keyframes": 12, "monkey": "ok"}) == {
        "api_key": "***",
        "nested": {"Authorization": "***", "size": "hd"},
        "webhookSecret": "***",
        "keyframes": 12,
        "monkey": "ok",
    }
    provider = FakeProvider()
    path = tmp_path / "journal.sqlite"

    async def main() -> None:
        async with AsyncClient(
            plugins=fake_plugins(provider), environ={}, settings=vidmatte.Settings(backend="fake"), journal=path
        ) as client:
            await client.remove(
                f"https://user:{secret}@example.test/clip.mp4?token={secret}",
                tmp_path / "out.webm",
                options={"webhook_secret": secret, "size": "hd"},
            )

    run_virtual(main())
    for file in tmp_path.glob("journal.sqlite*"):
        assert secret.encode() not in file.read_bytes(), file
    with Journal.open(path) as journal:
        (record,) = journal.jobs()
        assert record.request["options"] == {"webhook_secret": "***", "size": "hd"}
        assert record.source == "https://example.test/clip.mp4"  # the query string is dropped
        assert record.spent == PRICE


def test_a_corrupt_journal_is_a_one_line_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    garbage = b"this is not a database, it is a shopping list\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(JournalError) as info:
        Journal.open(path)
    message = str(info.value)
    assert "corrupt" in message
    assert str(path) in message
    assert "\n" not in message
    assert path.read_bytes() == garbage  # nothing overwritten: the record of spend may still be recovered


def test_a_locked_journal_waits_then_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal.open(path):
        pass
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with Journal.open(path, busy_timeout=0.2) as journal, pytest.raises(JournalError, match="locked by another"):
            journal.intend("k", backend="b", run_id="r", estimate=Decimal(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Journal.open(path) as journal:
        journal.intend("k", backend="b", run_id="r", estimate=Decimal(1))  # and it works once free


def test_an_unwritable_journal_folder_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot create its folder"):
        Journal.open(blocker / "sub" / "journal.sqlite")
    with pytest.raises(JournalError, match="is a folder"):
        Journal.open(tmp_path)


def test_threads_sharing_one_journal_do_not_corrupt_it(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite") as journal:

        def work(n: int) -> None:
            for i in range(20):
                key = f"{n}-{i}"
                journal.intend(key, backend="b", run_id="r", estimate=Decimal("0.01"))
                journal.submitting(key)
                journal.settle(key, Decimal("0.01"))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(journal.jobs()) == 80
        assert journal.total_spent() == Decimal("0.80")


def test_one_batch_input_never_gets_two_live_jobs(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite") as first, Journal.open(tmp_path / "j.sqlite") as second:
        first.intend("k1", backend="b", run_id="r1", estimate=Decimal(1), input_key="input")
        with pytest.raises(JournalError, match="already handled by job k1"):
            second.intend("k2", backend="b", run_id="r2", estimate=Decimal(1), input_key="input")
        assert second.get("k2") is None
        first.state("k1", JobState.FAILED, error="the provider failed it")
        first.done("k1", error="the provider failed it")
        second.intend("k2", backend="b", run_id="r2", estimate=Decimal(1), input_key="input")  # a retry is fine


def test_a_job_another_live_process_runs_is_not_taken_over(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    with Journal.open(tmp_path / "j.sqlite") as journal:
        for key, owner in (("live", f"{host}:{os.getppid()}"), ("dead", f"{host}:{dead.pid}")):
            journal.intend(key, backend="b", run_id="r", estimate=Decimal(1))
            journal._run("UPDATE jobs SET owner = ? WHERE job_key = ?", (owner, key))
        with pytest.raises(JournalError, match=f"is being run by process {host}:{os.getppid()}"):
            journal.take("live")
        journal.take("dead")  # its process is gone: this one takes the job over
        record = journal.get("dead")
        assert record is not None
        assert record.owner == f"{host}:{os.getpid()}"


def test_a_journal_from_before_the_last_columns_gains_them_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with Journal.open(path) as journal:
        journal.intend("k", backend="b", run_id="r", estimate=Decimal("0.3"))
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE jobs DROP COLUMN owner")
    conn.execute("ALTER TABLE jobs DROP COLUMN frames_paid")
    conn.commit()
    conn.close()
    with Journal.open(path) as journal:
        record = journal.get("k")
        assert record is not None
        assert record.reserved == Decimal("0.3")
        journal.take("k")
        journal.checkpoint("k", calls=1, frames_matted=1)

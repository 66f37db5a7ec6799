"""Budgets: reserved before submit inside one journal transaction, settled after, across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from journal_fakes import PRICE, FakeProvider, fake_plugins

import vidmatte
from vidmatte._budget import BudgetLimits, Committed, check_reservation
from vidmatte._journal import MEMORY, Journal
from vidmatte.errors import BudgetExceededError
from vidmatte.testing import run_virtual

HERE = Path(__file__).parent


def test_each_limit_names_itself_and_the_amounts() -> None:
    limits = BudgetLimits(per_job=Decimal(1), per_run=Decimal(2), per_day=Decimal(3))
    check_reservation(Decimal(1), limits, Committed(day=Decimal(2), run=Decimal(1)))  # exactly at every limit
    with pytest.raises(BudgetExceededError, match=r"per-job budget of USD 1\.0000"):
        check_reservation(Decimal("1.01"), limits, Committed())
    with pytest.raises(BudgetExceededError, match=r"this run to USD 2\.5000, over the per-run"):
        check_reservation(Decimal("0.5"), limits, Committed(run=Decimal(2)))
    with pytest.raises(BudgetExceededError, match=r"today's spend to USD 3\.5000"):
        check_reservation(Decimal("0.5"), limits, Committed(day=Decimal(3)))


def test_reservations_hold_until_settled_and_settling_low_frees_room() -> None:
    limits = BudgetLimits(per_day=Decimal("1.00"))
    with Journal.open(MEMORY) as journal:
        for key in ("a", "b"):
            journal.intend(key, backend="b", run_id="r", estimate=Decimal("0.5"), limits=limits)
        with pytest.raises(BudgetExceededError):
            journal.intend("c", backend="b", run_id="r", estimate=Decimal("0.5"), limits=limits)
        assert journal.get("c") is None  # a veto writes nothing
        journal.settle("a", Decimal("0.1"))  # cheaper than estimated: 0.4 back
        journal.intend("c", backend="b", run_id="r", estimate=Decimal("0.4"), limits=limits)
        journal.refuse("c", "the provider said no")  # never ran: all of it back
        journal.intend("d", backend="b", run_id="r", estimate=Decimal("0.4"), limits=limits)


def test_the_day_and_the_run_are_separate_scopes() -> None:
    limits = BudgetLimits(per_run=Decimal("1"), per_day=Decimal("1.5"))
    day_one = 1_700_000_000.0
    with Journal.open(MEMORY) as journal:
        journal.intend("y", backend="b", run_id="old", estimate=Decimal(1), limits=limits, now=day_one - 86_400)
        journal.intend("a", backend="b", run_id="r1", estimate=Decimal(1), limits=limits, now=day_one)
        with pytest.raises(BudgetExceededError, match="per-run"):
            journal.intend("b", backend="b", run_id="r1", estimate=Decimal("0.2"), limits=limits, now=day_one)
        journal.intend("c", backend="b", run_id="r2", estimate=Decimal("0.5"), limits=limits, now=day_one)
        with pytest.raises(BudgetExceededError, match="per-day"):
            journal.intend("d", backend="b", run_id="r3", estimate=Decimal("0.1"), limits=limits, now=day_one)


def _client(provider: FakeProvider, journal: bool | None = None, **budget: Decimal) -> vidmatte.AsyncClient:
    settings = vidmatte.Settings(backend="fake", budget=vidmatte.BudgetSettings(**budget))
    return vidmatte.AsyncClient(plugins=fake_plugins(provider), environ={}, settings=settings, journal=journal)


@pytest.mark.parametrize("journal", [None, False], ids=["default journal", "journaling off"])
def test_concurrent_jobs_of_one_client_share_the_run_budget(tmp_path: Path, journal: bool | None) -> None:
    provider = FakeProvider()

    async def main() -> list[object]:
        import asyncio

        async with _client(provider, journal=journal, per_run=PRICE * 2) as client:
            assert client.journal is not None
            # Off means off on disk; budgets still hold in memory within the process.
            assert (client.journal.path == MEMORY) is (journal is False)
            return list(
                await asyncio.gather(
                    *(client.remove("https://example.test/c.mp4", tmp_path / f"{i}.webm") for i in range(3)),
                    return_exceptions=True,
                )
            )

    results = run_virtual(main())
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(refused) == 1
    assert "per-run" in str(refused[0])
    assert provider.submissions == 2


def test_a_job_over_the_per_job_budget_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    provider = FakeProvider()

    async def main() -> None:
        async with _client(provider, per_job=PRICE / 2) as client:
            await client.remove("https://example.test/c.mp4", tmp_path / "out.webm")

    with pytest.raises(BudgetExceededError, match="per-job"):
        run_virtual(main())
    assert provider.submissions == 0
    assert not (tmp_path / "out.webm").exists()


def test_two_processes_sharing_a_journal_never_exceed_the_day_budget_together(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    with Journal.open(journal):
        pass  # created up front so both processes race on reservations, not on the schema
    go = tmp_path / "go"
    limit = PRICE * 7  # 7 jobs fit; each process wants 6
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    workers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "budget_worker.py"), str(journal), str(go), "6", str(limit), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    go.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    submitted = sum(r["submissions"] for r in results)
    assert submitted == 7, results  # all the budget used, never more
    assert sum(r["outcomes"].count("refused") for r in results) == 5
    with Journal.open(journal) as j:
        assert j.total_spent() == limit
        assert len([r for r in j.jobs() if r.succeeded]) == 7

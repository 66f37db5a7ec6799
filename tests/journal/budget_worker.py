"""One of the processes of the two-process budget test: run many jobs at once against a shared journal."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

from journal_fakes import FakeProvider, fake_plugins

import vidmatte
from vidmatte.errors import BudgetExceededError
from vidmatte.testing import run_virtual


def main() -> None:
    journal, go, jobs, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Decimal(sys.argv[4])
    provider = FakeProvider(polls_to_finish=1)
    settings = vidmatte.Settings(backend="fake", budget=vidmatte.BudgetSettings(per_day=limit))
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:  # both processes start together
        time.sleep(0.005)

    async def run() -> list[str]:
        async with vidmatte.AsyncClient(
            plugins=fake_plugins(provider), environ={}, settings=settings, journal=journal
        ) as client:

            async def one(i: int) -> str:
                try:
                    await client.remove("https://example.test/clip.mp4", journal.parent / f"{sys.argv[5]}-{i}.webm")
                except BudgetExceededError:
                    return "refused"
                return "done"

            return list(await asyncio.gather(*(one(i) for i in range(jobs))))

    outcomes = run_virtual(run())
    print(json.dumps({"submissions": provider.submissions, "outcomes": outcomes}))


if __name__ == "__main__":
    main()

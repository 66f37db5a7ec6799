"""Budgets: limits per job, per run and per day, checked against the journal's reservations.

A job's estimate is reserved (inside the journal's write transaction) before
it is submitted, and settled against its actual cost when it ends.  What a
limit counts is every job's committed money: the settled cost when known,
else the larger of its reservation and what its checkpoints prove was paid.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from vidmatte._config import BudgetSettings
from vidmatte.errors import BudgetExceededError

__all__ = ["BudgetLimits", "Committed", "check_reservation"]


@attrs.frozen
class BudgetLimits:
    """Spending limits in the journal's currency; ``None`` means no limit."""

    per_job: Decimal | None = None
    per_run: Decimal | None = None
    per_day: Decimal | None = None

    @classmethod
    def from_settings(cls, budget: BudgetSettings) -> BudgetLimits:
        """The limits of a ``[budget]`` section."""
        return cls(budget.per_job, budget.per_run, budget.per_day)

    @property
    def any(self) -> bool:
        """True when at least one limit is set."""
        return any(limit is not None for limit in (self.per_job, self.per_run, self.per_day))


@attrs.frozen
class Committed:
    """Money already committed in the scopes a new reservation is checked against."""

    day: Decimal = Decimal(0)
    run: Decimal = Decimal(0)


def _money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:.4f}"


def check_reservation(estimate: Decimal, limits: BudgetLimits, committed: Committed, *, currency: str = "USD") -> None:
    """Raise :class:`BudgetExceededError` when reserving ``estimate`` would break a limit."""
    if limits.per_job is not None and estimate > limits.per_job:
        raise BudgetExceededError(
            f"the job is estimated at {_money(estimate, currency)}, over the per-job budget of "
            f"{_money(limits.per_job, currency)}; nothing was submitted"
        )
    if limits.per_run is not None and committed.run + estimate > limits.per_run:
        raise BudgetExceededError(
            f"the job ({_money(estimate, currency)}) would take this run to "
            f"{_money(committed.run + estimate, currency)}, over the per-run budget of "
            f"{_money(limits.per_run, currency)}; nothing was submitted"
        )
    if limits.per_day is not None and committed.day + estimate > limits.per_day:
        raise BudgetExceededError(
            f"the job ({_money(estimate, currency)}) would take today's spend to "
            f"{_money(committed.day + estimate, currency)}, over the per-day budget of "
            f"{_money(limits.per_day, currency)}; nothing was submitted"
        )

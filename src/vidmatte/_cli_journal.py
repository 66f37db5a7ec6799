"""The journal's commands: ``batch``, ``resume``, ``jobs`` and ``spend``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmatte.errors import VidmatteError

if TYPE_CHECKING:
    from vidmatte._batch import BatchItem, BatchOutcome
    from vidmatte._client import AsyncClient
    from vidmatte._journal import JobRecord, Journal
    from vidmatte.contract import JobEvent

__all__ = ["COMMANDS", "add_parsers"]

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = func
        return func

    return register


def add_journal_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--journal PATH`` (on the main parser and on each command, either place works)."""
    parser.add_argument(
        "--journal",
        type=Path,
        default=None if top else argparse.SUPPRESS,
        help="journal file (default: $VIDMATTE_JOURNAL, the configured one, else the user data dir)",
    )


def add_parsers(commands: Any, add_output_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the journal's commands to the CLI's sub-parsers."""
    batch = commands.add_parser("batch", help="remove the background of many videos, safe to restart")
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, globs ('clips/*.mp4'), or @list.txt")
    batch.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    add_output_options(batch)
    batch.add_argument("--concurrency", type=int, help="jobs in flight at once (default: settings.concurrency)")
    batch.add_argument("--timeout", type=float, help="seconds each job may take before it is cancelled")
    batch.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_journal_option(batch)

    resume = commands.add_parser("resume", help="finish every unfinished journaled job (after a crash)")
    resume.add_argument("keys", nargs="*", metavar="JOB", help="only these jobs (keys or key prefixes)")
    resume.add_argument("--concurrency", type=int, help="jobs resumed at once")
    resume.add_argument("--timeout", type=float, help="seconds each job may take before it is cancelled")
    resume.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_journal_option(resume)

    jobs = commands.add_parser("jobs", help="list journaled jobs and their states")
    jobs.add_argument("--unfinished", action="store_true", help="only jobs with work left")
    jobs.add_argument("--limit", type=int, default=50, help="newest N jobs (0: all; default 50)")
    add_journal_option(jobs)

    spend = commands.add_parser("spend", help="the spending ledger, by day, backend and job")
    spend.add_argument("--by", choices=("day", "backend", "job", "all"), default="all", help="one view only")
    add_journal_option(spend)


def _journal_path(args: argparse.Namespace) -> str | Path | bool:
    path = getattr(args, "journal", None)
    return path if path is not None else True


def _open_journal(args: argparse.Namespace) -> Journal:
    from vidmatte._config import load_settings
    from vidmatte._journal import Journal

    path = getattr(args, "journal", None)
    if path is None:
        path = load_settings(config_file=args.config).journal
    return Journal.open(path)


def _client(args: argparse.Namespace, **kwargs: Any) -> AsyncClient:
    from vidmatte._client import AsyncClient
    from vidmatte._config import load_settings

    settings = load_settings(config_file=args.config, backend=getattr(args, "backend", None))
    return AsyncClient(settings=settings, journal=_journal_path(args), **kwargs)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    width = None if sys.stdout.isatty() else 140
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


class _BatchProgress:
    """One bar for the batch and one per job in flight, fed by job events (rich, on stderr)."""

    def __init__(self, enabled: bool, total: int | None, *, lazy: bool = False) -> None:
        self._enabled = enabled and (sys.stderr.isatty() or os.environ.get("VIDMATTE_PROGRESS") == "1")
        self._total = total
        self._progress: Any = None
        self._overall: Any = None
        self._tasks: dict[str, Any] = {}
        self._lazy = lazy

    def __enter__(self) -> _BatchProgress:
        if self._enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[note]}"),
                TimeElapsedColumn(),
                console=_console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._overall = self._progress.add_task("batch", total=self._total, note="")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, item: BatchItem, job_key: str) -> None:
        if self._progress is not None:
            self._tasks[job_key] = self._progress.add_task(f"  {item.source.name}", total=None, note="starting")

    def end(self, outcome: BatchOutcome) -> None:
        if self._progress is None:
            return
        task = self._tasks.pop(outcome.job_key or "", None)
        if task is not None:
            self._progress.remove_task(task)
        self._progress.advance(self._overall)

    def event(self, event: JobEvent) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(event.job_key)
        if task is None:
            if not self._lazy:
                return
            # Resumed jobs announce themselves by their first event.
            task = self._tasks[event.job_key] = self._progress.add_task(f"  {event.job_key[:12]}", total=None, note="")
        if event.frames_total:
            self._progress.update(task, total=event.frames_total, completed=event.frames_done or 0, note="frames")
        elif event.snapshot is not None:
            snapshot = event.snapshot
            fields: dict[str, Any] = {"note": snapshot.state.value}
            if snapshot.progress is not None:
                fields.update(total=100, completed=int(snapshot.progress * 100))
            if snapshot.queue_position is not None:
                fields["note"] = f"queue #{snapshot.queue_position}"
            self._progress.update(task, **fields)
        else:
            self._progress.update(task, note=event.kind.value)


def _summary_table(outcomes: list[BatchOutcome], seconds: float) -> int:
    from rich.table import Table

    table = Table(title=None, show_lines=False)
    for column in ("input", "status", "output", "cost", "s", "detail"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        style = "red" if not outcome.ok else None
        table.add_row(
            str(outcome.item.source),
            outcome.status,
            str(outcome.item.dest) if outcome.ok else "",
            outcome.cost,
            f"{outcome.seconds:.1f}",
            outcome.error or "",
            style=style,
        )
    console = _console()
    console.print(table)
    failed = sum(1 for o in outcomes if not o.ok)
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome.status] += 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    console.print(f"{len(outcomes)} inputs in {seconds:.1f} s: {parts}")
    for outcome in outcomes:
        if not outcome.ok:
            # Whole lines, unwrapped, so they can be read and searched.
            print(f"failed: {outcome.item.source}: {outcome.error}")
    return 1 if failed else 0


@_command("batch")
def _cmd_batch(args: argparse.Namespace) -> int:
    from vidmatte._batch import check_output_dir, default_format, expand_inputs, plan_batch, run_batch
    from vidmatte._cli import _options

    options = _options(args.option)
    fmt = default_format(args.format)
    if args.concurrency is not None and args.concurrency < 1:
        raise VidmatteError("--concurrency must be at least 1")
    inputs = expand_inputs(args.inputs)
    check_output_dir(args.output)
    items = plan_batch(inputs, args.output, fmt)
    started = time.monotonic()

    async def run() -> list[BatchOutcome]:
        with _BatchProgress(not args.quiet, len(items)) as progress:
            async with _client(args, events=progress.event) as client:
                return await run_batch(
                    client,
                    items,
                    format=fmt,
                    background=args.background,
                    keep_audio=not args.no_audio,
                    options=options,
                    concurrency=args.concurrency,
                    timeout=args.timeout,
                    on_start=progress.start,
                    on_end=progress.end,
                )

    outcomes = asyncio.run(run())
    return _summary_table(outcomes, time.monotonic() - started)


@_command("resume")
def _cmd_resume(args: argparse.Namespace) -> int:
    from rich.table import Table

    started = time.monotonic()

    async def run() -> list[Any]:
        with _BatchProgress(not args.quiet, None, lazy=True) as progress:
            async with _client(args, events=progress.event) as client:
                return await client.resume(args.keys or None, concurrency=args.concurrency, timeout=args.timeout)

    outcomes = asyncio.run(run())
    console = _console()
    if not outcomes:
        console.print("nothing to resume: every journaled job is finished")
        return 0
    table = Table()
    for column in ("job", "backend", "output", "result"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        result = (
            f"written, {outcome.result.cost.currency} {outcome.result.cost.amount:.4f}"
            if outcome.result
            else f"failed: {outcome.error}"
        )
        table.add_row(
            outcome.job_key[:12], outcome.backend, outcome.dest or "", result, style=None if outcome.ok else "red"
        )
    console.print(table)
    failed = sum(1 for o in outcomes if not o.ok)
    console.print(
        f"resumed {len(outcomes)} jobs in {time.monotonic() - started:.1f} s: {len(outcomes) - failed} finished, {failed} failed"
    )
    return 1 if failed else 0


def _cost(record: JobRecord) -> str:
    if record.actual is not None:
        return f"{record.actual:.4f}"
    return f"~{record.reserved:.4f}"


@_command("jobs")
def _cmd_jobs(args: argparse.Namespace) -> int:
    from rich.table import Table

    with _open_journal(args) as journal:
        records = journal.unfinished() if args.unfinished else journal.jobs(limit=args.limit or None)
        console = _console()
        if not records:
            console.print(f"no journaled jobs in {journal.path}")
            return 0
        table = Table()
        for column in ("job", "backend", "step", "state", "input", "output", "cost", "note"):
            table.add_column(column, overflow="fold")
        for record in records:
            table.add_row(
                record.job_key[:12],
                record.backend,
                record.step,
                record.state.value,
                record.source or "",
                record.dest or "",
                _cost(record),
                (record.error or "")[:120],
            )
        console.print(table)
        unfinished = sum(1 for r in records if not r.finished)
        console.print(f"{len(records)} jobs in {journal.path}; {unfinished} unfinished (run `vidmatte resume`)")
    return 0


@_command("spend")
def _cmd_spend(args: argparse.Namespace) -> int:
    from rich.table import Table

    with _open_journal(args) as journal:
        records = journal.jobs()
    console = _console()
    views = ("day", "backend", "job") if args.by == "all" else (args.by,)
    total = sum((r.spent for r in records), Decimal(0))
    reserved = sum((r.reserved for r in records if r.actual is None and not r.finished), Decimal(0))
    for view in views:
        table = Table(title=f"spend by {view}")
        table.add_column(view)
        table.add_column("jobs", justify="right")
        table.add_column("spent (USD)", justify="right")
        table.add_column("reserved, unsettled", justify="right")
        groups: dict[str, list[JobRecord]] = defaultdict(list)
        for record in records:
            name = {"day": record.day, "backend": record.backend, "job": record.job_key[:12]}[view]
            groups[name].append(record)
        for name in sorted(groups, reverse=view == "day"):
            rows = groups[name]
            spent = sum((r.spent for r in rows), Decimal(0))
            held = sum((r.reserved for r in rows if r.actual is None and not r.finished), Decimal(0))
            table.add_row(name, str(len(rows)), f"{spent:.4f}", f"{held:.4f}" if held else "")
        console.print(table)
    console.print(
        f"total spent: USD {total:.4f}" + (f" (plus USD {reserved:.4f} reserved by unsettled jobs)" if reserved else "")
    )
    return 0

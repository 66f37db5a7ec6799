"""Batch runs: many inputs, bounded concurrency, each input processed exactly once across restarts.

Every input gets a stable key (SHA-256 of its content, the output path, the
output options and the backend).  Before doing anything for an input, the
journal is asked about that key: an input whose output was written is
skipped, an unfinished job is resumed (never submitted twice), and only an
input never seen (or whose last job failed, was refused or cancelled) starts
a new job.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from vidmatte._files import file_sha256
from vidmatte._journal import JobRecord, Journal, Step
from vidmatte._models import Cost, JobState, OutputFormat
from vidmatte.errors import ConfigurationError, MediaError, VidmatteError

if TYPE_CHECKING:
    from vidmatte._client import AsyncClient

__all__ = [
    "BatchItem",
    "BatchOutcome",
    "check_output_dir",
    "default_format",
    "expand_inputs",
    "input_key",
    "plan_batch",
    "run_batch",
]

_SUFFIX = {
    OutputFormat.WEBM: ".webm",
    OutputFormat.MOV: ".mov",
    OutputFormat.MP4: ".mp4",
    OutputFormat.MATTE: ".mp4",
    OutputFormat.ZIP: ".zip",
    OutputFormat.PNG: "",
}


@attrs.frozen
class BatchItem:
    """One input of a batch and where its output goes."""

    source: Path
    dest: Path


@attrs.frozen
class BatchOutcome:
    """What happened to one input."""

    item: BatchItem
    status: str
    """``done`` (written now), ``skipped`` (written by an earlier run), ``resumed`` (an earlier
    run's job finished now) or ``failed``."""
    job_key: str | None = None
    cost: str = ""
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True unless the input failed."""
        return self.status != "failed"


def expand_inputs(patterns: Sequence[str], *, cwd: Path | None = None) -> list[Path]:
    """Files named by ``patterns``: paths, globs (``**`` recurses) and ``@list.txt`` files (one per line).

    Order is kept and duplicates dropped.  A pattern matching nothing is a
    :class:`ConfigurationError` (a typo must not silently shrink a batch).
    """
    base = cwd or Path.cwd()
    found: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path if path.is_absolute() else base / path
        key = resolved.absolute()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for pattern in patterns:
        if pattern.startswith("@"):
            listing = Path(pattern[1:])
            try:
                lines = (listing if listing.is_absolute() else base / listing).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigurationError(f"list file {pattern[1:]!r} cannot be read ({exc.strerror})") from None
            entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            for entry in expand_inputs(entries, cwd=listing.parent if listing.is_absolute() else base / listing.parent):
                add(entry)
            continue
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, root_dir=base, recursive=True))
            files = [Path(m) for m in matches if (base / m).is_file()]
            if not files:
                raise ConfigurationError(f"no file matches {pattern!r}")
            for match in files:
                add(base / match if not Path(match).is_absolute() else Path(match))
            continue
        path = Path(pattern)
        full = path if path.is_absolute() else base / path
        if not full.is_file():
            raise ConfigurationError(f"input {pattern!r} does not exist or is not a file")
        add(full)
    return found


def plan_batch(inputs: Iterable[Path], out_dir: Path, fmt: OutputFormat) -> list[BatchItem]:
    """Each input's output in ``out_dir``: its stem plus the format's suffix (``-2``... on clashes)."""
    items: list[BatchItem] = []
    taken: set[str] = set()
    for source in inputs:
        stem = source.stem or "output"
        name = stem + _SUFFIX[fmt]
        counter = 2
        while name in taken:
            name = f"{stem}-{counter}{_SUFFIX[fmt]}"
            counter += 1
        taken.add(name)
        items.append(BatchItem(source, out_dir / name))
    return items


def input_key(content_sha256: str, dest: Path, options: Mapping[str, Any], backend: str) -> str:
    """The stable key of one batch input: what it is, where it goes, how, and on which backend."""
    payload = json.dumps(
        {"content": content_sha256, "dest": str(dest.absolute()), "options": options, "backend": backend},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def check_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` when missing; a one-line error when it cannot be written (before any spend)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"output folder {str(out_dir)!r} cannot be created ({exc.strerror})") from None
    if not out_dir.is_dir():
        raise MediaError(f"output {str(out_dir)!r} is not a folder")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise MediaError(f"output folder {str(out_dir)!r} is not writable")


def _sweep(dest: Path) -> None:
    """Remove half-written temporaries of ``dest`` left by a killed run (they are never the output)."""
    for leftover in dest.parent.glob(f".{glob.escape(dest.name)}.*.part"):
        try:
            if leftover.is_dir():
                import shutil

                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        except OSError:  # best effort: a leftover is harmless, only untidy
            pass


def _spent(journal: Journal, job_key: str, fallback: Cost) -> str:
    """What the job cost in all, as journaled (every attempt), for the summary."""
    record = journal.get(job_key)
    if record is None:
        return f"{fallback.currency} {fallback.amount:.4f}"
    return f"{record.currency} {record.spent:.4f}"


def _rerun_in_place(client: AsyncClient, record: JobRecord) -> bool:
    """True for a failed or cancelled job whose backend runs in this process (frame backends)."""
    if record.step != Step.DONE or record.state is JobState.SUCCEEDED or record.handle is None:
        return False
    from vidmatte._resume import _in_process

    try:
        return _in_process(client.backend(record.backend))
    except VidmatteError:
        return False


def _output_intact(record: JobRecord) -> bool:
    if record.dest is None:
        return False
    dest = Path(record.dest)
    if record.output_sha256 is None:
        return dest.exists()  # a PNG folder has no digest
    try:
        return dest.is_file() and file_sha256(dest) == record.output_sha256
    except OSError:
        return False


async def run_batch(
    client: AsyncClient,
    items: Sequence[BatchItem],
    *,
    format: OutputFormat | None = None,
    background: str | None = None,
    keep_audio: bool = True,
    options: Mapping[str, Any] | None = None,
    backend: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    on_start: Callable[[BatchItem, str], None] | None = None,
    on_end: Callable[[BatchOutcome], None] | None = None,
) -> list[BatchOutcome]:
    """Process every item once (see the module docstring); returns one outcome per item, in order."""
    journal = client.journal
    if journal is None:
        raise ConfigurationError("a batch needs a journal (it is what makes restarts safe)")
    name = client.backend_name(backend)
    options = dict(options or {})
    key_options = {"format": format.value if format else None, "background": background, "audio": keep_audio, **options}
    gate = asyncio.Semaphore(max(1, concurrency or client.settings.concurrency))

    async def one(item: BatchItem) -> BatchOutcome:
        async with gate:
            started = time.monotonic()
            job_key: str | None = None
            status = "done"
            _sweep(item.dest)
            try:
                try:
                    digest = await asyncio.to_thread(file_sha256, item.source)
                except FileNotFoundError:
                    raise MediaError(f"input {str(item.source)!r} no longer exists") from None
                except OSError as exc:
                    raise MediaError(f"input {str(item.source)!r} cannot be read ({exc.strerror})") from None
                key = input_key(digest, item.dest, key_options, name)
                history = journal.by_input(key)
                last = history[-1] if history else None
                if last is not None and last.succeeded and _output_intact(last):
                    outcome = BatchOutcome(item, "skipped", last.job_key, f"{last.currency} {last.spent:.4f}")
                elif last is not None and _rerun_in_place(client, last):
                    # A failed job of an in-process backend runs again under its own key: the frames
                    # it paid for are in its checkpoints, so they are not bought twice.
                    job_key = last.job_key
                    if on_start is not None:
                        on_start(item, job_key)
                    journal.reopen(job_key)
                    reopened = journal.get(job_key)
                    assert reopened is not None
                    result = await client.resume_job(reopened, timeout=timeout)
                    status = "resumed"
                    outcome = BatchOutcome(item, status, job_key, _spent(journal, job_key, result.cost))
                elif last is not None and (last.step in Step.UNFINISHED or last.succeeded):
                    job_key = last.job_key
                    if on_start is not None:
                        on_start(item, job_key)
                    if last.succeeded:
                        last = attrs.evolve(last, step=Step.FINISHED)  # the output went missing: deliver again
                    result = await client.resume_job(last, timeout=timeout)
                    status = "resumed"
                    outcome = BatchOutcome(item, status, job_key, _spent(journal, job_key, result.cost))
                else:
                    import uuid

                    job_key = uuid.uuid4().hex
                    if on_start is not None:
                        on_start(item, job_key)
                    result = await client.remove(
                        item.source,
                        item.dest,
                        format=format,
                        background=background,
                        keep_audio=keep_audio,
                        options=options,
                        backend=name,
                        timeout=timeout,
                        idempotency_key=job_key,
                        input_key=key,
                    )
                    outcome = BatchOutcome(item, status, job_key, _spent(journal, job_key, result.cost))
            except VidmatteError as exc:
                outcome = BatchOutcome(item, "failed", job_key, error=str(exc))
            except OSError as exc:
                outcome = BatchOutcome(item, "failed", job_key, error=f"{exc.strerror or exc}")
            outcome = attrs.evolve(outcome, seconds=time.monotonic() - started)
            if on_end is not None:
                on_end(outcome)
            return outcome

    return list(await asyncio.gather(*(one(item) for item in items)))


def default_format(fmt: str | None) -> OutputFormat:
    """The batch's output format (``webm`` unless given)."""
    if fmt is None:
        return OutputFormat.WEBM
    try:
        return OutputFormat(fmt.lower())
    except ValueError:
        known = ", ".join(f.value for f in OutputFormat)
        raise ConfigurationError(f"unknown output format {fmt!r}; use one of {known}") from None

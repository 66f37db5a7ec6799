"""Resume: finish journaled jobs after a crash, from the journal alone, never paying twice.

Each unfinished job is taken from where the journal says it got:

* ``intent`` (never sent) and ``submitting`` (sent, outcome unknown): submitted
  again with the same idempotency key.  That is the reconciliation: a backend
  honouring keys answers with the job it already has, and a frame backend
  finds the masks it already paid for in its checkpoints.
* ``submitted``: reattached by its handle and waited for.  A frame job lived
  in the dead process, so it is submitted again with its key (checkpoints
  make that free).
* ``finished``: terminal at the backend; the output is downloaded again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from vidmatte._journal import JobRecord, JournalError, Step
from vidmatte._models import Background, Cost, JobState, MattingRequest, OutputFormat, OutputSpec, Source
from vidmatte.errors import (
    ConfigurationError,
    JobFailedError,
    NotFoundError,
    UnsupportedCapabilityError,
    VidmatteError,
)

if TYPE_CHECKING:
    from vidmatte._client import AsyncClient, RemoveResult, ResumeOutcome
    from vidmatte.contract import MattingBackend

__all__ = ["request_of", "resume_all", "resume_job"]


def _in_process(backend: MattingBackend) -> bool:
    """True when the backend's jobs run in the client's process (they die with it)."""
    from vidmatte.frames import FrameBackend

    return isinstance(backend, FrameBackend) or backend.capabilities.local


def _output(record: JobRecord) -> OutputSpec:
    data: dict[str, Any] = record.request
    background = data.get("background") or {}
    trim = data.get("trim")
    return OutputSpec(
        format=OutputFormat(data.get("format", OutputFormat.WEBM.value)),
        background=Background(
            kind=str(background.get("kind", "transparent")),
            colour=tuple(background.get("colour", (0, 255, 0))),
            image=background.get("image"),
        ),
        keep_audio=bool(data.get("keep_audio", True)),
        trim=(float(trim[0]), float(trim[1])) if trim else None,
    )


def request_of(client: AsyncClient, record: JobRecord, *, probe: bool) -> MattingRequest:
    """The journaled request of ``record``; ``probe`` checks and probes the source (needed to submit)."""
    if record.source is None:
        raise JournalError(f"job {record.job_key} has no journaled source (it was given as bytes); run it again")
    options: dict[str, Any] = dict(record.request.get("options") or {})
    output = _output(record)
    if not probe:
        return MattingRequest(Source.of(record.source), output, options)
    if "***" in repr(options):
        raise ConfigurationError(
            f"job {record.job_key} had secret options, which are never journaled; it cannot be submitted again"
        )
    return client.request(
        record.source,
        format=output.format,
        background=output.background,
        keep_audio=output.keep_audio,
        trim=output.trim,
        options=options,
    )


async def resume_job(client: AsyncClient, record: JobRecord, *, timeout: float | None = None) -> RemoveResult:
    """Finish one journaled job and write its output where the journal says."""
    from vidmatte._client import _Pending

    journal = client.journal
    if journal is None:
        raise JournalError("resuming needs a journal; pass journal= or set VIDMATTE_JOURNAL")
    if record.dest is None:
        raise JournalError(f"job {record.job_key} has no journaled output path; it cannot be finished")
    if record.step == Step.FINISHED and record.state.is_terminal and record.state is not JobState.SUCCEEDED:
        error = record.error or f"the job ended {record.state.value}"
        journal.done(record.job_key, error=error)
        raise JobFailedError(error, backend=record.backend, job_id=record.handle.job_id if record.handle else None)
    live = client.backend(record.backend)
    if (
        record.handle is None
        and record.step == Step.SUBMITTING
        and not _in_process(live)
        and not live.capabilities.idempotent_submit
    ):
        # The submit may have reached the provider, and sending it again could start (and
        # charge) a second job: only the provider can tell, so the job waits for the user.
        raise UnsupportedCapabilityError(
            f"job {record.job_key}: its submit may have reached {record.backend}, which does not honour idempotency "
            "keys; check the provider for the job before running it again",
            backend=record.backend,
        )
    journal.take(record.job_key)  # raises when another live process is running it
    key = record.job_key
    client._expect(key, dest=record.dest, input_key=record.input_key)
    handle = record.handle
    submit = handle is None
    if handle is not None and _in_process(live):
        # The job ran in a process that is gone.  Depending on the backend, polling resumes it (it
        # keeps its request), or it is unknown here, or it ended without a result: in the last two
        # cases it is submitted again under its key, and its checkpoints make that free.
        try:
            snapshot = await live.poll(handle)
        except NotFoundError:
            submit = True
        else:
            submit = snapshot.state.is_terminal and snapshot.state is not JobState.SUCCEEDED
    if submit:
        request = await asyncio.to_thread(request_of, client, record, probe=True)
        handle = await client.submit(request, backend=record.backend, idempotency_key=key)
    else:
        assert handle is not None
        request = request_of(client, record, probe=False)
        estimate = Cost(record.estimate, record.currency)
        client._pending[(handle.backend, handle.job_id)] = _Pending(key, request, estimate)
    return await client.finish(handle, request, record.dest, timeout=timeout)


async def resume_all(
    client: AsyncClient, job_keys: list[str] | None, *, concurrency: int, timeout: float | None = None
) -> list[ResumeOutcome]:
    """Resume every unfinished job (or those of ``job_keys``), ``concurrency`` at a time."""
    from vidmatte._client import ResumeOutcome

    journal = client.journal
    if journal is None:
        raise JournalError("resuming needs a journal; pass journal= or set VIDMATTE_JOURNAL")
    records = journal.unfinished()
    if job_keys is not None:
        wanted = set(job_keys)
        records = [r for r in records if r.job_key in wanted or any(r.job_key.startswith(k) for k in wanted)]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(record: JobRecord) -> ResumeOutcome:
        async with gate:
            try:
                result = await resume_job(client, record, timeout=timeout)
            except VidmatteError as exc:
                return ResumeOutcome(record.job_key, record.backend, record.dest, error=str(exc))
            return ResumeOutcome(record.job_key, record.backend, record.dest, result=result)

    return list(await asyncio.gather(*(one(record) for record in records)))

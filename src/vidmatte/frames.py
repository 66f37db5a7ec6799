"""Frame backends as job backends: :func:`frame_backend` turns any :class:`FrameMatter` into a
:class:`MattingBackend`.

The job runs in this process: ``submit`` starts decoding, matting (in
batches, under the matter's concurrency and rate limits), in-order
reassembly, temporal smoothing, edge refinement against the full-resolution
frames, and encoding straight into the requested output format.  ``poll``
reports progress, ``cancel`` stops it, ``download`` delivers the file.

Jobs are reattachable: the request is kept on disk, so a backend instance
(in this process or another) polling a job it does not run watches it if it
runs in this process, or resumes it.  Closing a backend stops its jobs without
cancelling them; :meth:`FrameBackend.cancel` cancels for good.

Masks already obtained are kept under ``context.cache_dir`` keyed by the
idempotency key: submitting the same key again after a crash never asks the
matter again for those frames (never pay twice for a frame).  Masks of a free
matter (``cost_per_call()`` of zero) are not kept: asking again costs nothing.  Finished
outputs stay there for a day, kept masks of unfinished jobs for a week.  Request options
``frame_step`` and ``change_threshold`` send fewer frames to paid matters;
``smoothing=False`` and ``refine=False`` turn off temporal smoothing and edge
refinement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from vidmatte._frames_pipeline import PipelineRun, RunCounters, Superseded
from vidmatte._frames_plan import FramePlan
from vidmatte._frames_store import JobStore, default_cache_dir, prune
from vidmatte._models import (
    Artefact,
    ArtefactRole,
    CancelOutcome,
    Capabilities,
    Cost,
    CostKind,
    JobError,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
    MediaInfo,
    OutputFormat,
    Source,
)
from vidmatte._ratelimit import RateLimiter
from vidmatte.contract import BackendContext, EventKind, FrameMatter, JobEvent, MattingBackend
from vidmatte.errors import MediaError, NotFoundError, UnsupportedCapabilityError, VidmatteError

__all__ = ["FrameBackend", "frame_backend"]

_MEDIA_TYPES = {
    OutputFormat.WEBM: "video/webm",
    OutputFormat.MOV: "video/quicktime",
    OutputFormat.MP4: "video/mp4",
    OutputFormat.MATTE: "video/mp4",
    OutputFormat.ZIP: "application/zip",
    OutputFormat.PNG: "inode/directory",
}


@attrs.define(eq=False)
class _Job:
    handle: JobHandle
    store: JobStore
    state: JobState = JobState.RUNNING
    counters: RunCounters = attrs.field(factory=RunCounters)
    error: JobError | None = None
    artefact: Artefact | None = None
    task: asyncio.Task[None] | None = None
    cost: Decimal = Decimal(0)
    price: Cost | None = None
    owner: object = None
    """The backend instance running it."""
    interrupted: bool = False
    """Stopped because its backend closed (not cancelled): any instance may resume it."""
    superseded: bool = False
    """Taken over by an instance on another event loop while this one's loop stood still."""


# Jobs running in this process, by job folder: every backend instance sees them, so a second
# instance polling a job the first is running watches it instead of running it again.
_ACTIVE: dict[str, _Job] = {}


def _active(store: JobStore) -> _Job | None:
    job = _ACTIVE.get(str(store.dir))
    if job is None:
        return None
    if job.interrupted or job.task is None or job.task.done():
        # Stopped (its backend closed, perhaps before the task ever ran): resumable, not running.
        del _ACTIVE[str(store.dir)]
        return None
    loop = job.task.get_loop()
    if loop is not asyncio.get_running_loop() and not loop.is_running():
        # Its loop stands still (a sync client between calls) and would never finish it while
        # we wait: take the job over.  The old run starts no further matte calls and stops
        # quietly when its loop runs again.
        job.superseded = True
        del _ACTIVE[str(store.dir)]
        return None
    return job


def frame_backend(matter: FrameMatter, context: BackendContext, *, capabilities: Capabilities) -> MattingBackend:
    """A :class:`MattingBackend` that runs ``matter`` over every frame of a video, in this process."""
    return FrameBackend(matter, context, capabilities=capabilities)


class FrameBackend:
    """The :class:`MattingBackend` made by :func:`frame_backend` (see the module docstring)."""

    def __init__(self, matter: FrameMatter, context: BackendContext, *, capabilities: Capabilities) -> None:
        self.matter = matter
        self.context = context
        self._capabilities = capabilities
        self.cache_dir = context.cache_dir or default_cache_dir()
        limits = matter.limits
        self._semaphore = asyncio.Semaphore(max(1, limits.max_concurrency))
        self._limiter = context.limiter
        if self._limiter is None and limits.requests_per_second:
            self._limiter = RateLimiter(limits.requests_per_second * 60, clock=context.clock)
        self._jobs: dict[str, _Job] = {}
        self._pruned = False

    @property
    def name(self) -> str:
        """The matter's backend name."""
        return self.matter.name

    @property
    def capabilities(self) -> Capabilities:
        """As given to :func:`frame_backend`."""
        return self._capabilities

    # helpers -----------------------------------------------------------------------------

    def _emit(self, kind: EventKind, job: _Job, **data: Any) -> None:
        counters = job.counters
        self.context.events(
            JobEvent(
                kind=kind,
                backend=self.name,
                job_key=job.handle.job_id,
                handle=job.handle,
                frames_done=counters.frames_encoded,
                frames_total=counters.frames_total,
                data=data,
            )
        )

    def _source_path(self, request: MattingRequest, store: JobStore) -> Path:
        source = request.source
        if source.path is not None:
            return Path(source.path)
        if source.data is not None:
            store.dir.mkdir(parents=True, exist_ok=True)
            path = store.dir / "source.bin"
            if not path.exists() or path.stat().st_size != len(source.data):
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(source.data)
                os.replace(tmp, path)
            return path
        raise UnsupportedCapabilityError(
            f"backend {self.name!r} reads local files or bytes, not URLs; download the video first",
            backend=self.name,
        )

    async def _media(self, request: MattingRequest, source: Path) -> MediaInfo:
        if request.media is not None and request.source.path is not None:
            return request.media
        from vidmatte.media import probe

        return await asyncio.to_thread(probe, source)

    def _cost(self, job: _Job, kind: CostKind) -> Cost:
        price = job.price or self.matter.cost_per_call()
        frames = job.counters.calls
        amount = price.amount * frames
        return Cost(amount, price.currency, kind, f"{frames} frames x {price.currency} {price.amount}")

    # the contract ------------------------------------------------------------------------

    async def estimate(self, request: MattingRequest) -> Cost:
        """Planned :meth:`FrameMatter.matte` frames x the matter's price per frame."""
        plan = FramePlan.from_options(request.options)
        media = request.media
        if media is None and request.source.data is not None:
            media = await asyncio.to_thread(_probe_bytes, request.source.data)
        elif media is None:
            media = await self._media(request, self._source_path(request, JobStore(self.cache_dir, "estimate")))
        price = self.matter.cost_per_call()
        calls = plan.planned_calls(media.frame_count)
        return Cost(
            price.amount * calls,
            price.currency,
            CostKind.ESTIMATED,
            f"{calls} frames x {price.currency} {price.amount}",
        )

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        """Start the job in this process (or find it: same key, same job).

        A key whose job failed or was cancelled starts again, reusing the masks
        kept from before.
        """
        from vidmatte._converter import converter
        from vidmatte.media import check_output

        known = self._jobs.get(idempotency_key)
        if (
            known is not None
            and known.state in (JobState.RUNNING, JobState.SUCCEEDED)
            and not known.interrupted
            and not known.superseded
        ):
            return known.handle
        check_output(request.output)
        plan = FramePlan.from_options(request.options)
        if not self._pruned:
            self._pruned = True
            await asyncio.to_thread(prune, self.cache_dir)
        store = JobStore(self.cache_dir, idempotency_key)
        active = _active(store)
        if active is not None:
            self._jobs[idempotency_key] = active
            return active.handle
        done = store.done()
        if done is not None:
            job = self._finished_job(idempotency_key, store, done)
            self._jobs[idempotency_key] = job
            return job.handle
        source = self._source_path(request, store)
        info = await self._media(request, source)
        kept = attrs.evolve(request, source=Source(path=str(source)), media=info)
        handle = JobHandle(
            backend=self.name,
            job_id=idempotency_key,
            submitted_at=self.context.clock.wall(),
            media_duration=info.duration,
            data={"frames": str(info.frame_count)},
        )
        record = {"request": converter.unstructure(kept), "handle": converter.unstructure(handle)}
        await asyncio.to_thread(store.save_request, json.loads(json.dumps(record, default=str)))
        return self._start(handle, store, kept, source, info, plan).handle

    def _start(
        self,
        handle: JobHandle,
        store: JobStore,
        request: MattingRequest,
        source: Path,
        info: MediaInfo,
        plan: FramePlan,
    ) -> _Job:
        job = _Job(handle=handle, store=store, price=self.matter.cost_per_call(), owner=self)
        job.counters.frames_total = info.frame_count
        self._jobs[handle.job_id] = job
        _ACTIVE[str(store.dir)] = job
        job.task = asyncio.create_task(self._run(job, request, source, info, plan), name=f"vidmatte-{self.name}")
        return job

    async def _run(self, job: _Job, request: MattingRequest, source: Path, info: MediaInfo, plan: FramePlan) -> None:
        store = job.store
        output = request.output
        try:
            await asyncio.to_thread(store.open)
            dest = store.output_path(output.format)
            run = PipelineRun(
                self.matter,
                source=source,
                info=info,
                output=output,
                dest=dest,
                store=store,
                chooser=plan.chooser(info.frame_count),
                smoothing=plan.smoothing,
                refine=plan.refine,
                semaphore=self._semaphore,
                limiter=self._limiter,
                stopped=lambda: job.superseded,
                on_progress=lambda counters: self._emit(EventKind.PROGRESS, job),
                on_checkpoint=lambda counters, chunk: self._emit(
                    EventKind.CHECKPOINT,
                    job,
                    frames_matted=store.masks_kept if chunk is not None else counters.calls + counters.reused,
                    calls=counters.calls,
                    chunk=str(chunk) if chunk is not None else None,
                ),
            )
            job.counters = run.counters
            frames = await run.run()
            job.counters.frames_total = frames
            job.counters.frames_encoded = frames
            cost = self._cost(job, CostKind.FINAL)
            record = {
                "path": str(dest),
                "format": output.format.value,
                "has_alpha": bool(output.format.has_alpha and output.background.is_transparent),
                "frames": frames,
                "calls": job.counters.calls,
                "cost": str(cost.amount),
                "currency": cost.currency,
                "duration": info.duration,
            }
            await asyncio.to_thread(store.mark_done, record)
            job.artefact = self._artefact(record)
            job.state = JobState.SUCCEEDED
        except asyncio.CancelledError:
            job.state = JobState.CANCELLED
            raise
        except Superseded:
            job.state = JobState.CANCELLED
            return
        except VidmatteError as exc:
            job.state = JobState.FAILED
            job.error = JobError(str(exc), type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a job failure is reported by poll, never lost
            job.state = JobState.FAILED
            job.error = JobError(f"{type(exc).__name__}: {' '.join(str(exc).split())}", "internal")
        finally:
            if _ACTIVE.get(str(store.dir)) is job:
                del _ACTIVE[str(store.dir)]
        if job.error is not None:
            with contextlib.suppress(OSError):
                store.mark_ended(JobState.FAILED.value, job.error.message, job.error.code)

    def _artefact(self, record: dict[str, Any]) -> Artefact:
        fmt = OutputFormat(record["format"])
        path = Path(record["path"])
        return Artefact(
            role=ArtefactRole.MATTE if fmt is OutputFormat.MATTE else ArtefactRole.COMPOSITE,
            url=path.resolve().as_uri(),
            media_type=_MEDIA_TYPES[fmt],
            has_alpha=bool(record.get("has_alpha", fmt.has_alpha)),
            name=path.name,
            format=fmt,
        )

    def _finished_job(self, key: str, store: JobStore, record: dict[str, Any]) -> _Job:
        handle = JobHandle(
            backend=self.name,
            job_id=key,
            submitted_at=self.context.clock.wall(),
            media_duration=float(record.get("duration") or 0) or None,
        )
        frames = int(record.get("frames", 0))
        job = _Job(handle=handle, store=store, state=JobState.SUCCEEDED)
        job.counters = RunCounters(frames_total=frames, frames_encoded=frames)
        job.artefact = self._artefact(record)
        job.cost = Decimal(str(record.get("cost", "0")))
        return job

    def _job(self, handle: JobHandle) -> _Job:
        """The job behind ``handle``: ours, running elsewhere in this process, or found on disk.

        A job submitted (by any process) but neither finished nor ended is
        resumed here: its request was kept, and so were its paid-for masks.
        """
        job = self._jobs.get(handle.job_id)
        if job is not None and not job.interrupted and not job.superseded:
            return job
        store = JobStore(self.cache_dir, handle.job_id)
        active = _active(store)
        if active is not None:
            self._jobs[handle.job_id] = active
            return active
        record = store.done()
        if record is not None:
            job = self._finished_job(handle.job_id, store, record)
            job.handle = handle
            self._jobs[handle.job_id] = job
            return job
        ended = store.ended()
        if ended is not None:
            job = _Job(handle=handle, store=store, state=JobState(ended.get("state", "failed")))
            if ended.get("message"):
                job.error = JobError(str(ended["message"]), ended.get("code"))
            self._jobs[handle.job_id] = job
            return job
        kept = store.request()
        if kept is None:
            raise NotFoundError(
                f"no job {handle.job_id!r} in this process or its cache", backend=self.name, job_id=handle.job_id
            )
        from vidmatte._converter import converter

        try:
            request = converter.structure(kept["request"], MattingRequest)
        except Exception:  # noqa: BLE001 - a damaged or foreign file: the job cannot be resumed
            request = None
        if request is None or request.source.path is None or request.media is None:
            raise NotFoundError(
                f"job {handle.job_id!r} was kept in an unreadable form; submit it again",
                backend=self.name,
                job_id=handle.job_id,
            )
        plan = FramePlan.from_options(request.options)
        return self._start(handle, store, request, Path(request.source.path), request.media, plan)

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        """The job's state, progress (frames encoded / frames), cost so far and, when done, its artefact."""
        job = self._job(handle)
        counters = job.counters
        progress = None
        if counters.frames_total:
            progress = min(1.0, counters.frames_encoded / counters.frames_total)
        if job.state is JobState.SUCCEEDED:
            progress = 1.0
        if job.task is None and job.state is JobState.SUCCEEDED:
            cost = Cost(job.cost, "USD", CostKind.FINAL, "from the finished job's record")
        else:
            cost = self._cost(job, CostKind.FINAL if job.state.is_terminal else CostKind.REPORTED)
        return JobSnapshot(
            handle=job.handle,
            state=job.state,
            raw_status=job.state.value,
            progress=progress,
            cost=cost,
            error=job.error,
            artefacts=(job.artefact,) if job.artefact is not None else (),
            observed_at=self.context.clock.wall(),
        )

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """Stop a running job (its partial output is deleted; kept masks stay for a resubmit)."""
        job = self._job(handle)
        if job.state.is_terminal or job.task is None:
            return CancelOutcome.ALREADY_TERMINAL
        loop = job.task.get_loop()
        if loop is not asyncio.get_running_loop():
            # Started by a client on another event loop (another sync facade): ask that loop.
            with contextlib.suppress(RuntimeError):  # that loop is closed: the job is gone with it
                loop.call_soon_threadsafe(job.task.cancel)
        else:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
        job.state = JobState.CANCELLED
        await asyncio.to_thread(job.store.mark_ended, JobState.CANCELLED.value)
        return CancelOutcome.ACCEPTED

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        """Put the finished output at ``dest`` (a hard link when possible, else a copy), atomically."""
        job = self._job(handle)
        if job.state is not JobState.SUCCEEDED or job.artefact is None:
            raise NotFoundError(
                f"job {handle.job_id!r} has no output (state {job.state.value})",
                backend=self.name,
                job_id=handle.job_id,
            )
        source = Path(job.artefact.url.removeprefix("file://"))
        await asyncio.to_thread(_deliver, source, Path(dest))
        self._emit(EventKind.DOWNLOADED, job, path=str(dest))

    async def aclose(self) -> None:
        """Stop the jobs this instance runs (any instance may resume them later) and release the matter."""
        for job in list(self._jobs.values()):
            if job.owner is self and job.task is not None and not job.task.done():
                job.interrupted = True
                job.task.cancel()
                try:
                    await job.task
                except asyncio.CancelledError:
                    job.state = JobState.CANCELLED
        await self.matter.aclose()


def _probe_bytes(data: bytes) -> MediaInfo:
    import tempfile

    from vidmatte.media import probe

    with tempfile.NamedTemporaryFile(suffix=".video") as handle:
        handle.write(data)
        handle.flush()
        return probe(handle.name)


def _deliver(source: Path, dest: Path) -> None:
    from vidmatte.media import temporary_sibling

    if not source.exists():
        raise MediaError(f"{source}: the finished output is gone from the cache")
    if not dest.parent.is_dir():
        raise MediaError(f"{dest}: cannot be written: its folder does not exist")
    tmp = temporary_sibling(dest)
    try:
        if source.is_dir():
            shutil.copytree(source, tmp)
        else:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
        if tmp.is_dir() and dest.is_dir():
            old = temporary_sibling(dest)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise MediaError(f"{dest}: cannot be written ({exc.strerror or exc})") from None

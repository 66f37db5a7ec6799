"""The client: one async implementation, and a sync facade that drives it."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx

from vidmatte._budget import BudgetLimits
from vidmatte._clock import Clock, LoopClock
from vidmatte._config import Settings, load_settings
from vidmatte._files import file_sha256
from vidmatte._journal import MEMORY, JobRecord, Journal, JournalError
from vidmatte._journal_plugin import JobContext, JournalPlugin
from vidmatte._models import (
    ArtefactRole,
    Background,
    CancelOutcome,
    Cost,
    CostKind,
    InputMode,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
    MediaInfo,
    OutputFormat,
    OutputSpec,
    Source,
    format_for_path,
)
from vidmatte._plugins import PluginManager, load_plugins
from vidmatte._scheduler import Scheduler
from vidmatte.contract import BackendContext, BackendSpec, EventKind, JobEvent, MattingBackend, Uploader
from vidmatte.errors import (
    ConfigurationError,
    JobFailedError,
    JobTimeoutError,
    MediaError,
    ProtocolError,
    UnsupportedCapabilityError,
    VidmatteError,
)

__all__ = ["AsyncClient", "Client", "RemoveResult", "ResumeOutcome"]

_log = logging.getLogger("vidmatte")


@attrs.frozen
class RemoveResult:
    """What :meth:`AsyncClient.remove` produced."""

    output: Path
    backend: str
    job_key: str
    snapshot: JobSnapshot
    cost: Cost
    sha256: str | None
    """SHA-256 of the output file (``None`` for a PNG folder)."""
    media: MediaInfo | None


@attrs.frozen
class ResumeOutcome:
    """What :meth:`AsyncClient.resume` did with one journaled job."""

    job_key: str
    backend: str
    dest: str | None
    result: RemoveResult | None = None
    error: str | None = None
    """Why the job could not be finished now (it stays journaled for the next resume)."""

    @property
    def ok(self) -> bool:
        """True when the job's output is written."""
        return self.result is not None


@attrs.define
class _Pending:
    """What the client remembers of a job it submitted (for cost settlement)."""

    job_key: str
    request: MattingRequest
    estimate: Cost


class _LazyUploader:
    """Builds the configured uploader on first use, so backends that never upload never ask."""

    def __init__(self, build: Callable[[], Uploader]) -> None:
        self._build = build
        self._uploader: Uploader | None = None

    async def upload(self, path: Path, *, content_type: str) -> str:
        if self._uploader is None:
            self._uploader = self._build()
        return await self._uploader.upload(path, content_type=content_type)


class AsyncClient:
    """Runs matting jobs on any installed backend.

    Configuration comes from explicit arguments, then the environment, then
    ``vidmatte.toml`` (see :func:`vidmatte.load_settings`).  ``transport``
    injects an HTTP transport into every backend (tests pass a respx-backed
    ``httpx.MockTransport``); ``events`` observes every job event.
    """

    def __init__(
        self,
        *,
        backend: str | None = None,
        settings: Settings | None = None,
        plugins: PluginManager | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        events: Callable[[JobEvent], None] | None = None,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
        cache_dir: Path | None = None,
        journal: Journal | str | Path | bool | None = None,
        run_id: str | None = None,
    ) -> None:
        self._env: Mapping[str, str] = dict(os.environ if environ is None else environ)
        self.settings = settings or load_settings(environ=self._env, backend=backend)
        if backend is not None and settings is not None:
            self.settings = attrs.evolve(self.settings, backend=backend)
        self.plugins = plugins or load_plugins(environ=self._env)
        self._transport = transport
        self._events = events
        self._clock = clock or LoopClock()
        self.scheduler = scheduler or Scheduler(clock=self._clock)
        self._cache_dir = cache_dir
        self._backends: dict[str, MattingBackend] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self.run_id = run_id or uuid.uuid4().hex[:12]
        """Jobs journaled by this client share this id (the per-run budget counts them)."""
        self.journal: Journal | None = None
        """The journal recording every job (``None`` when journaling is off)."""
        self._journal_plugin: JournalPlugin | None = None
        self._owns_journal = False
        self._open_journal(journal)

    def _open_journal(self, journal: Journal | str | Path | bool | None) -> None:
        """Journal to ``journal``: a :class:`Journal`, a path, ``True`` or ``None`` (the configured
        path, else the user data dir: the default, so a paid job is always recoverable; with
        ``None`` an unusable default location falls back to memory with a warning), or ``False``
        (off; an in-memory journal still holds budgets within the process when set)."""
        limits = BudgetLimits.from_settings(self.settings.budget)
        if journal is False and limits.any:
            journal = MEMORY
        if journal is False:
            return
        if isinstance(journal, Journal):
            opened = journal
        elif journal is None or journal is True:
            try:
                opened = Journal.open(self.settings.journal)
            except JournalError as exc:
                if journal is True or self.settings.journal:
                    raise
                # The default location is unusable (a read-only home): jobs still run, journaled
                # in memory only, and the user is told once.
                _log.warning("vidmatte: journaling in memory only: %s", exc)
                opened = Journal.open(MEMORY)
            self._owns_journal = True
        else:
            opened = Journal.open(journal)
            self._owns_journal = True
        self.journal = opened
        self._journal_plugin = JournalPlugin(opened, run_id=self.run_id, limits=limits if limits.any else None)
        self.plugins.register(self._journal_plugin, name=f"vidmatte.journal.{id(self._journal_plugin)}")

    def __repr__(self) -> str:
        return f"AsyncClient(backend={self.settings.backend!r})"

    # -- plumbing ----------------------------------------------------------------------

    def backend_name(self, name: str | None = None) -> str:
        """The backend a job goes to: ``name``, the configured one, or the offline default."""
        chosen = name or self.settings.backend or self.plugins.default_backend()
        if chosen is None:
            raise ConfigurationError(
                "no backend is installed; install the offline one with: pip install vidmatte-local"
            )
        return chosen

    def _cache_root(self) -> Path:
        if self._cache_dir is None:
            import platformdirs

            self._cache_dir = Path(platformdirs.user_cache_dir("vidmatte"))
        return self._cache_dir

    def _make_uploader(self) -> Uploader:
        uploaders = self.plugins.uploaders
        name = self.settings.uploader or ("http" if "http" in uploaders else next(iter(uploaders), None))
        if name is None or name not in uploaders:
            raise ConfigurationError(f"no uploader {name!r} is installed" if name else "no uploader is installed")
        context = BackendContext(
            settings=self.settings.uploaders.get(name, {}), env=self._env, transport=self._transport
        )
        return uploaders[name].factory(context)

    def backend(self, name: str | None = None) -> MattingBackend:
        """The live backend ``name`` (built on first use, then reused)."""
        name = self.backend_name(name)
        existing = self._backends.get(name)
        if existing is not None:
            return existing
        spec = self.plugins.backend_spec(name)
        context = BackendContext(
            settings=self.settings.backends.get(name, {}),
            env=self._env,
            transport=self._transport,
            clock=self._clock,
            limiter=self.scheduler.limiter_for(name, spec.capabilities.requests_per_minute),
            uploader=_LazyUploader(self._make_uploader),
            events=self._emit,
            cache_dir=self._cache_root() / name,
        )
        backend = self._backends[name] = spec.factory(context)
        return backend

    def spec(self, name: str | None = None) -> BackendSpec:
        """The registered spec of backend ``name`` (or of the default)."""
        return self.plugins.backend_spec(self.backend_name(name))

    def _emit(self, event: JobEvent) -> None:
        try:
            self.plugins.hook.vidmatte_job_event(event=event)
        finally:
            if self._events is not None:
                self._events(event)

    # -- requests ----------------------------------------------------------------------

    def request(
        self,
        source: str | Path | bytes | Source,
        *,
        dest: str | Path | None = None,
        format: OutputFormat | str | None = None,
        background: Background | str | None = None,
        keep_audio: bool = True,
        trim: tuple[float, float] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> MattingRequest:
        """Build and check a :class:`MattingRequest`, probing a local source.

        The format follows ``dest``'s extension unless given.  A transparent
        background asked of a format without alpha is a :class:`ConfigurationError`.
        """
        src = Source.of(source)
        if format is not None:
            try:
                fmt = OutputFormat(str(format).lower())
            except ValueError:
                known = ", ".join(f.value for f in OutputFormat)
                raise ConfigurationError(f"unknown output format {format!r}; use one of {known}") from None
        elif dest is not None:
            fmt = format_for_path(dest)
        else:
            fmt = OutputFormat.WEBM
        if isinstance(background, str):
            background = Background.parse(background)
        if background is None:
            background = Background() if fmt.has_alpha or fmt is OutputFormat.MATTE else Background("colour")
        elif background.is_transparent and not fmt.has_alpha and fmt is not OutputFormat.MATTE:
            raise ConfigurationError(
                f"a transparent background needs a format with alpha; {fmt.value} has none "
                "(use .webm, .mov, .zip or a folder, or give --background a colour)"
            )
        media = self._probe(src)
        return MattingRequest(src, OutputSpec(fmt, background, keep_audio, trim), dict(options or {}), media)

    def _probe(self, source: Source) -> MediaInfo | None:
        if source.path is None:
            return None
        path = Path(source.path)
        if not path.exists():
            raise MediaError(f"input {source.path!r} does not exist")
        if not path.is_file():
            raise MediaError(f"input {source.path!r} is not a file")
        from vidmatte import media

        return media.probe(path)

    def _check(self, backend: MattingBackend, request: MattingRequest) -> None:
        """Refuse, before any money is spent, what the backend declares it cannot do."""
        caps = backend.capabilities
        mode = request.source.mode
        if (
            mode is InputMode.FILE
            and InputMode.FILE not in caps.input_modes
            and InputMode.UPLOAD not in caps.input_modes
        ):
            raise UnsupportedCapabilityError(
                f"backend {backend.name!r} does not take local files", backend=backend.name
            )
        if mode is InputMode.URL and InputMode.URL not in caps.input_modes:
            raise UnsupportedCapabilityError(f"backend {backend.name!r} does not take URLs", backend=backend.name)
        if request.output.format not in caps.outputs:
            raise UnsupportedCapabilityError(
                f"backend {backend.name!r} cannot produce {request.output.format.value}", backend=backend.name
            )
        media = request.media
        if media is None:
            return
        if caps.max_duration is not None and media.duration > caps.max_duration:
            raise UnsupportedCapabilityError(
                f"the video lasts {media.duration:.1f} s; backend {backend.name!r} takes at most {caps.max_duration:.0f} s",
                backend=backend.name,
            )
        if caps.max_size_bytes is not None and media.size_bytes and media.size_bytes > caps.max_size_bytes:
            raise UnsupportedCapabilityError(
                f"the video is {media.size_bytes} bytes; backend {backend.name!r} takes at most {caps.max_size_bytes}",
                backend=backend.name,
            )
        if caps.max_resolution is not None:
            max_w, max_h = caps.max_resolution
            if media.width * media.height > max_w * max_h:
                raise UnsupportedCapabilityError(
                    f"the video is {media.width}x{media.height}; backend {backend.name!r} takes at most {max_w}x{max_h}",
                    backend=backend.name,
                )

    # -- the job lifecycle ---------------------------------------------------------------

    async def estimate(self, request: MattingRequest, *, backend: str | None = None) -> Cost:
        """The backend's cost estimate for ``request`` (no money is spent)."""
        live = self.backend(backend)
        self._check(live, request)
        return await live.estimate(request)

    async def submit(
        self, request: MattingRequest, *, backend: str | None = None, idempotency_key: str | None = None
    ) -> JobHandle:
        """Estimate, let cost hooks veto, upload if needed, and submit once.

        ``idempotency_key`` names the logical job (a fresh one when ``None``);
        submitting again with the same key never starts a second paid job on
        backends that honour it.
        """
        live = self.backend(backend)
        self._check(live, request)
        job_key = idempotency_key or uuid.uuid4().hex
        # A key journaled with an attempt already may have started a job: this submit reconciles it,
        # so nothing it meets (a veto, a refusal) may release the reservation or lose the job.
        prior = self.journal.get(job_key) if self.journal is not None else None
        reconcile = prior is not None and prior.attempts > 0
        if self._journal_plugin is not None:
            unit = _unit_price(live)
            if unit is not None:
                self._journal_plugin.expect(job_key, attrs.evolve(self._context(job_key), unit_price=unit))
        estimate = await live.estimate(request)
        hook = self.plugins.hook
        try:
            hook.vidmatte_cost_estimated(job_key=job_key, backend=live.name, request=request, cost=estimate)
        except VidmatteError:
            if not reconcile:
                # Budgets that reserved before the veto release through the settlement.
                hook.vidmatte_cost_incurred(job_key=job_key, backend=live.name, cost=Cost.zero(), snapshot=None)
            raise
        request = await self._reachable(live, request)
        self._emit(JobEvent(EventKind.SUBMITTING, live.name, job_key, data={"estimate": str(estimate.amount)}))
        try:
            handle = await live.submit(request, idempotency_key=job_key)
        except VidmatteError as exc:
            if _refused(exc) and not reconcile:
                # Refused outright: nothing ran, nothing is owed.
                hook.vidmatte_cost_incurred(job_key=job_key, backend=live.name, cost=Cost.zero(), snapshot=None)
                self._note(job_key, exc)
            elif reconcile:
                # An earlier attempt may have created the job: never released, never resubmitted
                # under a new key.  The provider must be asked, or the next resume tries again.
                self._note(job_key, VidmatteError(f"reconciling the submit failed: {exc}"))
                if self.journal is not None and self.journal.path != MEMORY:
                    exc.message += "; an earlier attempt may have started the job: it stays journaled, unsettled"
            else:
                # The job may exist (a lost answer, a torn connection): its outcome is unknown until
                # a resume reconciles it by submitting again under the same key.  Nothing is settled.
                self._note(job_key, VidmatteError(f"submit outcome unknown: {exc}"))
                if self.journal is not None and self.journal.path != MEMORY:
                    exc.message += "; the submit's outcome is unknown: `vidmatte resume` settles it under the same key"
            raise
        self._pending[(live.name, handle.job_id)] = _Pending(job_key, request, estimate)
        self._emit(JobEvent(EventKind.SUBMITTED, live.name, job_key, handle=handle))
        return handle

    def _context(self, job_key: str) -> JobContext:
        plugin = self._journal_plugin
        return plugin._context.get(job_key, JobContext()) if plugin is not None else JobContext()

    def _expect(self, job_key: str, *, dest: str | Path | None, input_key: str | None) -> None:
        if self._journal_plugin is not None:
            self._journal_plugin.expect(
                job_key,
                attrs.evolve(
                    self._context(job_key), dest=str(Path(dest).absolute()) if dest else None, input_key=input_key
                ),
            )

    async def _reachable(self, backend: MattingBackend, request: MattingRequest) -> MattingRequest:
        """Upload a local file for a backend that only takes URLs."""
        caps = backend.capabilities
        source = request.source
        if source.mode is InputMode.FILE and InputMode.FILE not in caps.input_modes:
            assert source.path is not None
            context = backend.name
            uploader = _LazyUploader(self._make_uploader)
            try:
                url = await uploader.upload(Path(source.path), content_type="video/mp4")
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"backend {context!r} needs the video at a URL and no uploader is configured: {exc.message}"
                ) from None
            return attrs.evolve(request, source=Source(url=url))
        if source.mode is InputMode.BYTES and InputMode.BYTES not in caps.input_modes:
            raise UnsupportedCapabilityError(
                f"backend {backend.name!r} does not take bytes; pass a path", backend=backend.name
            )
        return request

    def _job_key(self, handle: JobHandle) -> str:
        pending = self._pending.get((handle.backend, handle.job_id))
        return pending.job_key if pending else handle.data.get("idempotency_key", handle.job_id)

    async def wait(self, handle: JobHandle, *, timeout: float | None = None) -> JobSnapshot:
        """Wait until the job is terminal (polled by the shared scheduler) and settle its cost.

        Raises :class:`~vidmatte.errors.JobTimeoutError` when ``timeout`` (default:
        the configured deadline) passes; the remote job is then cancelled.
        """
        live = self.backend(handle.backend)
        job_key = self._job_key(handle)
        last_state: list[JobState] = [JobState.PENDING]

        def observe(snapshot: JobSnapshot) -> None:
            kind = EventKind.STATE_CHANGED if snapshot.state is not last_state[0] else EventKind.PROGRESS
            last_state[0] = snapshot.state
            self._emit(JobEvent(kind, live.name, job_key, handle=handle, snapshot=snapshot))

        try:
            snapshot = await self.scheduler.wait(
                live, handle, timeout=timeout if timeout is not None else self.settings.deadline, on_snapshot=observe
            )
        except VidmatteError as exc:
            if exc.retryable:
                raise
            caps = live.capabilities
            pending = self._pending.pop((handle.backend, handle.job_id), None)
            charged = pending.estimate if pending and caps.cancelled_jobs_charged else Cost.zero()
            self.plugins.hook.vidmatte_cost_incurred(job_key=job_key, backend=live.name, cost=charged, snapshot=None)
            raise
        cost = self._actual_cost(live, handle, snapshot)
        snapshot = attrs.evolve(snapshot, cost=cost)
        self.plugins.hook.vidmatte_cost_incurred(job_key=job_key, backend=live.name, cost=cost, snapshot=snapshot)
        self._emit(JobEvent(EventKind.FINISHED, live.name, job_key, handle=handle, snapshot=snapshot))
        return snapshot

    def _actual_cost(self, backend: MattingBackend, handle: JobHandle, snapshot: JobSnapshot) -> Cost:
        if snapshot.cost is not None and snapshot.cost.kind is not CostKind.ESTIMATED:
            return snapshot.cost
        caps = backend.capabilities
        pending = self._pending.pop((handle.backend, handle.job_id), None)
        charged = snapshot.state is JobState.SUCCEEDED or (
            (snapshot.state is JobState.FAILED and caps.failed_jobs_charged)
            or (snapshot.state is JobState.CANCELLED and caps.cancelled_jobs_charged)
        )
        if not charged:
            return Cost.zero(detail=f"{snapshot.state.value} jobs are not charged")
        if snapshot.cost is not None:
            return attrs.evolve(snapshot.cost, kind=CostKind.FINAL)
        if pending is not None:
            return Cost(
                pending.estimate.amount, pending.estimate.currency, CostKind.FINAL, "the estimate (none reported)"
            )
        return Cost(Decimal(0), "USD", CostKind.FINAL, "unknown: the backend reported no cost")

    async def reattach(self, handle: JobHandle | str) -> JobSnapshot:
        """Poll a job submitted earlier, by any process, from its handle (or its JSON)."""
        if isinstance(handle, str):
            handle = JobHandle.from_json(handle)
        live = self.backend(handle.backend)
        return await live.poll(handle)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """Ask the backend to stop the job (``UNSUPPORTED`` when it cannot)."""
        live = self.backend(handle.backend)
        if not live.capabilities.cancel:
            return CancelOutcome.UNSUPPORTED
        return await live.cancel(handle)

    async def download(
        self, handle: JobHandle, snapshot: JobSnapshot, dest: str | Path, output: OutputSpec
    ) -> str | None:
        """Save the job's result at ``dest`` in ``output``'s format; return its SHA-256.

        The backend's artefact is delivered as is when it already is the
        requested format, and converted locally otherwise.  ``dest`` appears
        only when complete.
        """
        live = self.backend(handle.backend)
        dest = Path(dest)
        artefact = snapshot.artefact(ArtefactRole.COMPOSITE)
        if artefact is None:
            raise ProtocolError("the job succeeded but reported no result", backend=live.name, job_id=handle.job_id)
        job_key = self._job_key(handle)
        try:
            self._ensure_writable(dest)
            if artefact.format is output.format:
                await live.download(handle, artefact, dest)
            else:
                # Named like every other temporary of ``dest``: a batch sweeps what a killed run left.
                with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent) as work:
                    raw = Path(work) / (artefact.name or "result")
                    await live.download(handle, artefact, raw)
                    from vidmatte import media

                    await asyncio.to_thread(media.convert, raw, dest, output)
            digest = await asyncio.to_thread(file_sha256, dest) if dest.is_file() else None
        except OSError as exc:
            error = MediaError(f"cannot write {str(dest)!r}: {exc.strerror or exc}{self._kept_note()}")
            self._note(job_key, error)
            raise error from None
        except VidmatteError as exc:
            self._note(job_key, exc)
            if self.journal is not None and isinstance(exc, MediaError) and "resume" not in exc.message:
                exc.message += self._kept_note()
            raise
        self._emit(
            JobEvent(
                EventKind.DOWNLOADED,
                live.name,
                self._job_key(handle),
                handle=handle,
                snapshot=snapshot,
                data={"path": str(dest), "sha256": digest},
            )
        )
        return digest

    def _kept_note(self) -> str:
        if self.journal is None or self.journal.path == MEMORY:
            return ""
        return "; the paid result is kept: run `vidmatte resume` once this is fixed"

    def _note(self, job_key: str, error: BaseException) -> None:
        """Journal why a job stopped short of its output (it stays unfinished, for resume)."""
        if self.journal is not None:
            try:
                self.journal.note(job_key, str(error))
            except VidmatteError as exc:  # the original error matters more
                _log.warning("could not journal the error of job %s: %s", job_key, exc)

    @staticmethod
    def _ensure_writable(dest: Path) -> None:
        parent = dest.parent if str(dest.parent) else Path(".")
        if not parent.is_dir():
            raise MediaError(f"cannot write {str(dest)!r}: folder {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise MediaError(f"cannot write {str(dest)!r}: folder {str(parent)!r} is not writable")

    async def remove(
        self,
        source: str | Path | bytes | Source,
        dest: str | Path,
        *,
        format: OutputFormat | str | None = None,
        background: Background | str | None = None,
        keep_audio: bool = True,
        trim: tuple[float, float] | None = None,
        options: Mapping[str, Any] | None = None,
        backend: str | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        input_key: str | None = None,
    ) -> RemoveResult:
        """Remove the background of ``source`` and write the result at ``dest``: the main job.

        With a journal, every step is recorded first, so :meth:`resume` can finish
        the job after a crash; ``input_key`` tags it for batch runs.
        """
        # Probing reads the file: off the event loop, so many jobs start side by side.
        request = await asyncio.to_thread(
            self.request,
            source,
            dest=dest,
            format=format,
            background=background,
            keep_audio=keep_audio,
            trim=trim,
            options=options,
        )
        self._ensure_writable(Path(dest))
        live = self.backend(backend)
        job_key = idempotency_key or uuid.uuid4().hex
        self._expect(job_key, dest=dest, input_key=input_key)
        handle = await self.submit(request, backend=live.name, idempotency_key=job_key)
        return await self.finish(handle, request, dest, timeout=timeout)

    async def finish(
        self, handle: JobHandle, request: MattingRequest, dest: str | Path, *, timeout: float | None = None
    ) -> RemoveResult:
        """Wait for a submitted job and write its result at ``dest`` (the second half of :meth:`remove`)."""
        live = self.backend(handle.backend)
        job_key = self._job_key(handle)
        try:
            snapshot = await self.wait(handle, timeout=timeout)
        except JobTimeoutError as exc:
            if self.journal is not None:
                # The deadline cancelled the remote job: nothing is left to finish.
                self.journal.state(job_key, JobState.CANCELLED, error=str(exc))
                self.journal.done(job_key, error=str(exc))
            raise
        except VidmatteError as exc:
            self._note(job_key, exc)
            raise
        if snapshot.state is not JobState.SUCCEEDED:
            error = snapshot.error
            detail = f": {error.message}" if error else ""
            raise JobFailedError(
                f"the job ended {snapshot.state.value}{detail}",
                code=error.code if error else None,
                backend=live.name,
                job_id=handle.job_id,
            )
        digest = await self.download(handle, snapshot, dest, request.output)
        assert snapshot.cost is not None
        return RemoveResult(Path(dest), live.name, job_key, snapshot, snapshot.cost, digest, request.media)

    # -- the journal ---------------------------------------------------------------------

    async def resume(
        self, job_keys: list[str] | None = None, *, concurrency: int | None = None, timeout: float | None = None
    ) -> list[ResumeOutcome]:
        """Finish every unfinished journaled job (or those of ``job_keys``), never paying twice.

        A job whose submit outcome is unknown is reconciled by submitting again
        with its journaled idempotency key; a submitted one is reattached; a
        finished one is downloaded again.  Returns one outcome per job.
        """
        from vidmatte._resume import resume_all

        return await resume_all(self, job_keys, concurrency=concurrency or self.settings.concurrency, timeout=timeout)

    async def resume_job(self, record: JobRecord, *, timeout: float | None = None) -> RemoveResult:
        """Finish one journaled job (see :meth:`resume`)."""
        from vidmatte._resume import resume_job

        return await resume_job(self, record, timeout=timeout)

    async def aclose(self) -> None:
        """Stop polling and close every backend (and the journal this client opened)."""
        await self.scheduler.aclose()
        backends, self._backends = list(self._backends.values()), {}
        for live in backends:
            try:
                await live.aclose()
            except Exception as exc:  # noqa: BLE001 - closing the others matters more
                _log.warning("closing backend %s failed: %s", live.name, exc)
        if self._journal_plugin is not None:
            self.plugins.unregister(self._journal_plugin)
            self._journal_plugin = None
            if self._owns_journal and self.journal is not None:
                self.journal.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


_NOT_REFUSALS = frozenset({408, 409, 425, 429})
"""4xx statuses that do not prove the submit created nothing (timeouts, conflicts, rate limits)."""


def _refused(error: VidmatteError) -> bool:
    """True when ``error`` proves the submit started nothing: raised before sending, or a definite
    4xx answer.  Anything else (a torn connection, an unreadable answer, 5xx) leaves it unknown."""
    if isinstance(error, ConfigurationError | UnsupportedCapabilityError | MediaError):
        return True
    status = error.status_code
    return not error.retryable and status is not None and 400 <= status < 500 and status not in _NOT_REFUSALS


def _unit_price(backend: MattingBackend) -> Decimal | None:
    """The price of one frame when ``backend`` is a frame backend (its checkpoints count frames)."""
    from vidmatte.frames import FrameBackend

    if isinstance(backend, FrameBackend):
        return backend.matter.cost_per_call().amount
    return None


class Client:
    """The synchronous facade: every method runs :class:`AsyncClient`'s on a private loop."""

    def __init__(self, *, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None, **kwargs: Any) -> None:
        """``kwargs`` go to :class:`AsyncClient`; ``loop_factory`` makes the private loop
        (tests pass :class:`vidmatte.testing.VirtualTimeLoop` to run on virtual time)."""
        self._runner = asyncio.Runner(loop_factory=loop_factory)
        self.aio = AsyncClient(**kwargs)
        """The async client doing the work."""

    def __repr__(self) -> str:
        return f"Client(backend={self.aio.settings.backend!r})"

    def request(self, source: str | Path | bytes | Source, **kwargs: Any) -> MattingRequest:
        """See :meth:`AsyncClient.request`."""
        return self.aio.request(source, **kwargs)

    def estimate(self, request: MattingRequest, *, backend: str | None = None) -> Cost:
        """See :meth:`AsyncClient.estimate`."""
        return self._runner.run(self.aio.estimate(request, backend=backend))

    def submit(self, request: MattingRequest, **kwargs: Any) -> JobHandle:
        """See :meth:`AsyncClient.submit`."""
        return self._runner.run(self.aio.submit(request, **kwargs))

    def wait(self, handle: JobHandle, *, timeout: float | None = None) -> JobSnapshot:
        """See :meth:`AsyncClient.wait`."""
        return self._runner.run(self.aio.wait(handle, timeout=timeout))

    def reattach(self, handle: JobHandle | str) -> JobSnapshot:
        """See :meth:`AsyncClient.reattach`."""
        return self._runner.run(self.aio.reattach(handle))

    def cancel(self, handle: JobHandle) -> CancelOutcome:
        """See :meth:`AsyncClient.cancel`."""
        return self._runner.run(self.aio.cancel(handle))

    def download(self, handle: JobHandle, snapshot: JobSnapshot, dest: str | Path, output: OutputSpec) -> str | None:
        """See :meth:`AsyncClient.download`."""
        return self._runner.run(self.aio.download(handle, snapshot, dest, output))

    def remove(self, source: str | Path | bytes | Source, dest: str | Path, **kwargs: Any) -> RemoveResult:
        """See :meth:`AsyncClient.remove`."""
        return self._runner.run(self.aio.remove(source, dest, **kwargs))

    def resume(self, job_keys: list[str] | None = None, **kwargs: Any) -> list[ResumeOutcome]:
        """See :meth:`AsyncClient.resume`."""
        return self._runner.run(self.aio.resume(job_keys, **kwargs))

    def close(self) -> None:
        """Close the async client and the private loop."""
        try:
            self._runner.run(self.aio.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

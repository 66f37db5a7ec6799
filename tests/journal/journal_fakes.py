"""An in-process provider that outlives its clients (a "server"), and the backend that talks to it."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import attrs

from vidmatte import (
    Artefact,
    ArtefactRole,
    BackendContext,
    BackendSpec,
    CancelOutcome,
    Capabilities,
    Cost,
    CostKind,
    InputMode,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
    OutputFormat,
    PluginManager,
    hookimpl,
)
from vidmatte.errors import RequestRejectedError, TransientError

PRICE = Decimal("0.25")


@attrs.define
class ProviderJob:
    """A job on the fake provider."""

    id: str
    key: str
    polls: int = 0
    state: JobState = JobState.QUEUED


@attrs.define
class FakeProvider:
    """The provider's side: jobs by idempotency key (a second submit with a key answers the first job),
    submissions and charges counted.  Outlives the clients, as a real service outlives a crash."""

    polls_to_finish: int = 2
    honour_keys: bool = True
    jobs: dict[str, ProviderJob] = attrs.field(factory=dict)
    by_key: dict[str, str] = attrs.field(factory=dict)
    submissions: int = 0
    replays: int = 0
    charges: int = 0
    lose_next_answers: int = 0
    """Submits whose job is created but whose answer is lost (the client sees a dropped connection)."""
    reject_next: int = 0
    """Submits refused outright with a 400."""
    fail: bool = False
    hang_after_submit: bool = False
    """The job is created, then the answer never comes (the process dies waiting for it)."""
    honours_keys: bool = True
    """Whether a repeated idempotency key returns the existing job (declared in capabilities)."""
    on_submit: Callable[[str], None] | None = None
    """Called with each new job's key (a test's way to act at that moment)."""
    disk_full_next: int = 0
    """Downloads that fail as if the disk were full."""

    def submit(self, key: str) -> ProviderJob:
        if self.reject_next:
            self.reject_next -= 1
            raise RequestRejectedError("the video is not acceptable", backend="fake", status_code=400)
        if self.honour_keys and key in self.by_key:
            self.replays += 1
            job = self.jobs[self.by_key[key]]
        else:
            self.submissions += 1
            if self.on_submit is not None:
                self.on_submit(key)
            job = ProviderJob(f"job-{self.submissions}", key)
            self.jobs[job.id] = job
            self.by_key[key] = job.id
        if self.lose_next_answers:
            self.lose_next_answers -= 1
            raise TransientError("network error: the connection dropped", backend="fake")
        return job

    def poll(self, job_id: str) -> ProviderJob:
        job = self.jobs[job_id]
        if not job.state.is_terminal:
            job.polls += 1
            if job.polls >= self.polls_to_finish:
                job.state = JobState.FAILED if self.fail else JobState.SUCCEEDED
                if job.state is JobState.SUCCEEDED:
                    self.charges += 1
            else:
                job.state = JobState.RUNNING
        return job


class FakeBackend:
    """A remote-job backend talking to a :class:`FakeProvider` (polls answer at once, no real time)."""

    name = "fake"
    capabilities = Capabilities(
        input_modes=frozenset({InputMode.FILE, InputMode.URL}),
        outputs=frozenset({OutputFormat.WEBM}),
        native_output=OutputFormat.WEBM,
    )

    def __init__(self, context: BackendContext, provider: FakeProvider) -> None:
        self.context = context
        self.provider = provider
        self.capabilities = attrs.evolve(FakeBackend.capabilities, idempotent_submit=provider.honours_keys)
        self.downloads = 0

    async def estimate(self, request: MattingRequest) -> Cost:
        return Cost(PRICE, "USD", CostKind.ESTIMATED, "flat")

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        job = self.provider.submit(idempotency_key)
        if self.provider.hang_after_submit:
            self.provider.hang_after_submit = False
            await asyncio.Event().wait()
        # Stamped as submitted a while ago: the scheduler then polls at once instead of waiting for
        # its prior (real-time CLI tests stay fast; nothing else depends on it).
        submitted = self.context.clock.wall() - 30.0
        return JobHandle(self.name, job.id, submitted, 1.0, {"idempotency_key": idempotency_key})

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        job = self.provider.poll(handle.job_id)
        artefacts: tuple[Artefact, ...] = ()
        cost = None
        if job.state is JobState.SUCCEEDED:
            artefacts = (Artefact(ArtefactRole.COMPOSITE, f"memory://{job.id}", format=OutputFormat.WEBM),)
            cost = Cost(PRICE, "USD", CostKind.REPORTED, "charged")
        return JobSnapshot(handle, job.state, job.state.value, poll_after=0.01, artefacts=artefacts, cost=cost)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        return CancelOutcome.ACCEPTED

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        await asyncio.sleep(0)  # a download takes time: a crash can land before it is written
        self.downloads += 1
        tmp = dest.with_name(f".{dest.name}.x.part")
        tmp.write_bytes(f"result of {handle.job_id}".encode())
        if self.provider.disk_full_next:
            self.provider.disk_full_next -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        os.replace(tmp, dest)

    async def aclose(self) -> None:
        pass


class FakePlugin:
    """Registers ``fake`` backends bound to one provider."""

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        self.backends: list[FakeBackend] = []

    @hookimpl
    def vidmatte_register_backends(self) -> list[BackendSpec]:
        def make(context: BackendContext) -> FakeBackend:
            backend = FakeBackend(context, self.provider)
            self.backends.append(backend)
            return backend

        return [BackendSpec("fake", make, "a fake remote provider", FakeBackend.capabilities)]


def fake_plugins(provider: FakeProvider) -> PluginManager:
    """A plugin manager with only the fake backend."""
    manager = PluginManager()
    manager.register(FakePlugin(provider))
    return manager

"""Shared fakes for the core's tests: an in-memory backend and a plugin manager holding it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import vidmatte
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
    JobError,
    JobHandle,
    JobSnapshot,
    JobState,
    MattingRequest,
    OutputFormat,
    PluginManager,
    hookimpl,
)


class ScriptedBackend:
    """A backend whose polls answer from a script of states (the last one repeats)."""

    def __init__(self, context: BackendContext, script: list[JobState] | None = None, **caps: object) -> None:
        self.context = context
        self.script = list(script or [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED])
        self.capabilities = Capabilities(
            input_modes=frozenset({InputMode.FILE, InputMode.URL, InputMode.BYTES}),
            **caps,  # type: ignore[arg-type]
        )
        self.name = "scripted"
        self.submitted: list[tuple[MattingRequest, str]] = []
        self.polls: list[float] = []
        self.cancelled: list[str] = []
        self.closed = False

    async def estimate(self, request: MattingRequest) -> Cost:
        return Cost(Decimal("0.012"), "USD", CostKind.ESTIMATED, "12 s x 0.001")

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        self.submitted.append((request, idempotency_key))
        return JobHandle(self.name, f"job-{len(self.submitted)}", self.context.clock.wall(), 12.0)

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        self.polls.append(self.context.clock.monotonic())
        state = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        artefacts: tuple[Artefact, ...] = ()
        error = None
        if state is JobState.SUCCEEDED:
            artefacts = (Artefact(ArtefactRole.COMPOSITE, "memory://result", format=OutputFormat.WEBM),)
        if state is JobState.FAILED:
            error = JobError("the model crashed", "model_error")
        return JobSnapshot(handle, state, raw_status=state.value, artefacts=artefacts, error=error)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        self.cancelled.append(handle.job_id)
        return CancelOutcome.ACCEPTED

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        dest.write_bytes(b"matted video bytes")

    async def aclose(self) -> None:
        self.closed = True


class ScriptedPlugin:
    """Registers the scripted backend and records every hook call, in order."""

    def __init__(self, script: list[JobState] | None = None) -> None:
        self.script = script
        self.calls: list[tuple[str, object]] = []
        self.backends: list[ScriptedBackend] = []

    def _make(self, context: BackendContext) -> ScriptedBackend:
        backend = ScriptedBackend(context, self.script)
        self.backends.append(backend)
        return backend

    @hookimpl
    def vidmatte_register_backends(self) -> list[BackendSpec]:
        return [BackendSpec(name="scripted", factory=self._make, summary="test backend")]

    @hookimpl
    def vidmatte_job_event(self, event: vidmatte.JobEvent) -> None:
        self.calls.append((f"event:{event.kind.value}", event))

    @hookimpl
    def vidmatte_cost_estimated(self, job_key: str, backend: str, request: MattingRequest, cost: Cost) -> None:
        self.calls.append(("cost_estimated", cost))

    @hookimpl
    def vidmatte_cost_incurred(self, job_key: str, backend: str, cost: Cost, snapshot: JobSnapshot | None) -> None:
        self.calls.append(("cost_incurred", cost))


@pytest.fixture
def scripted_plugin() -> ScriptedPlugin:
    return ScriptedPlugin()


@pytest.fixture
def manager(scripted_plugin: ScriptedPlugin) -> Iterator[PluginManager]:
    pm = PluginManager()
    pm.register(scripted_plugin, name="scripted")
    return pm

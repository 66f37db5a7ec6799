"""The ``local`` backend: a frame-pipeline backend per mode, chosen per request."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from vidmatte import (
    Artefact,
    BackendContext,
    CancelOutcome,
    Capabilities,
    Cost,
    JobHandle,
    JobSnapshot,
    MattingBackend,
    MattingRequest,
)
from vidmatte.frames import FrameBackend, frame_backend
from vidmatte_local._person import PersonMatter
from vidmatte_local._settings import load, mode_of
from vidmatte_local._static import StaticMatter
from vidmatte_local.plugin import CAPABILITIES

__all__ = ["LocalBackend"]


class LocalBackend:
    """:class:`vidmatte.MattingBackend` running jobs in this process, offline.

    ``person`` jobs share one MediaPipe-backed pipeline; each ``static`` job
    gets its own (its background model belongs to its clip).  Jobs this
    process does not know are looked up in the cache of finished outputs.
    """

    name = "local"

    def __init__(self, context: BackendContext) -> None:
        self.context = context
        self.settings = load(context.settings)
        self._person: FrameBackend | None = None
        self._jobs: dict[str, MattingBackend] = {}
        self._statics: list[MattingBackend] = []

    @property
    def capabilities(self) -> Capabilities:
        """Files and bytes in; every output format out; cancel; local."""
        return CAPABILITIES

    def _person_backend(self) -> FrameBackend:
        if self._person is None:
            backend = frame_backend(PersonMatter(self.settings), self.context, capabilities=CAPABILITIES)
            assert isinstance(backend, FrameBackend)
            self._person = backend
        return self._person

    def _static_source(self, request: MattingRequest, key: str) -> Path:
        if request.source.path is not None:
            return Path(request.source.path)
        data = request.source.data or b""
        folder = self._person_backend().cache_dir / "local-sources"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.bin"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def _backend_for(self, request: MattingRequest, key: str) -> MattingBackend:
        mode = mode_of(request.options, self.settings.mode)
        if mode == "person":
            return self._person_backend()
        matter = StaticMatter(self.settings, self._static_source(request, key))
        backend = frame_backend(matter, self.context, capabilities=CAPABILITIES)
        self._statics.append(backend)
        return backend

    def _known(self, handle: JobHandle) -> MattingBackend:
        return self._jobs.get(handle.job_id) or self._person_backend()

    async def estimate(self, request: MattingRequest) -> Cost:
        """Zero, with the planned frame count in the detail."""
        mode_of(request.options, self.settings.mode)
        return await self._person_backend().estimate(request)

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        """Start the job here; the same key finds the same job (or its finished output)."""
        if idempotency_key in self._jobs:
            return await self._jobs[idempotency_key].submit(request, idempotency_key=idempotency_key)
        backend = self._backend_for(request, idempotency_key)
        handle = await backend.submit(request, idempotency_key=idempotency_key)
        self._jobs[idempotency_key] = backend
        return handle

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        """State, progress and (when done) the output."""
        return await self._known(handle).poll(handle)

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """Stop a running job."""
        return await self._known(handle).cancel(handle)

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        """Deliver the output to ``dest`` atomically."""
        await self._known(handle).download(handle, artefact, dest)

    async def aclose(self) -> None:
        """Stop jobs, close models and threads."""
        for backend in self._statics:
            await backend.aclose()
        if self._person is not None:
            await self._person.aclose()

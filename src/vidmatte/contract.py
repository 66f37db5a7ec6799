"""The provider-neutral contract: what every backend plugin implements and receives.

* :class:`MattingBackend` is the job contract (estimate, submit, poll, cancel,
  download, close).  Remote job backends implement it directly.
* :class:`FrameMatter` is the small contract of frame backends (a batch of
  frames in, masks out); :func:`vidmatte.frames.frame_backend` turns one into a
  :class:`MattingBackend`.
* :class:`BackendSpec` is what a plugin registers through the
  ``vidmatte_register_backends`` hook; its factory receives a
  :class:`BackendContext` with everything the core injects (settings, HTTP
  transport, clock, rate limiter, uploader, event sink).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from vidmatte._clock import Clock, LoopClock
from vidmatte._models import (
    Artefact,
    CancelOutcome,
    Capabilities,
    Cost,
    JobHandle,
    JobSnapshot,
    MattingRequest,
)
from vidmatte._ratelimit import RateLimiter

if TYPE_CHECKING:
    import httpx
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "BackendContext",
    "BackendSpec",
    "EventKind",
    "FrameLimits",
    "FrameMatter",
    "JobEvent",
    "MattingBackend",
    "Uploader",
    "UploaderSpec",
]


@runtime_checkable
class MattingBackend(Protocol):
    """The job contract every provider meets.  All methods are coroutines.

    Implementations raise only :mod:`vidmatte.errors` types, never leak their
    credentials into errors or reprs, and keep terminal states final.
    """

    @property
    def name(self) -> str:
        """The registered backend name (``"aigateway"``)."""

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do."""

    async def estimate(self, request: MattingRequest) -> Cost:
        """The expected cost of ``request`` (``request.media`` is set for local sources)."""

    async def submit(self, request: MattingRequest, *, idempotency_key: str) -> JobHandle:
        """Start the job.  Retries of this submit reuse ``idempotency_key`` unchanged."""

    async def poll(self, handle: JobHandle) -> JobSnapshot:
        """The job's current snapshot (one provider request at most)."""

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """Ask the provider to stop the job."""

    async def download(self, handle: JobHandle, artefact: Artefact, dest: Path) -> None:
        """Stream ``artefact`` to ``dest``: written to a temporary file, renamed when complete.

        An expired URL is refreshed by polling the job again.
        """

    async def aclose(self) -> None:
        """Release connections and workers."""


@attrs.frozen
class FrameLimits:
    """How a frame backend wants to be driven."""

    batch_size: int = 1
    """Frames per :meth:`FrameMatter.matte` call."""
    max_concurrency: int = 1
    """Calls in flight at once."""
    requests_per_second: float | None = None
    """Calls a second; ``None`` for no limit."""
    max_side: int | None = None
    """Longest side frames are resized to before matting (masks are scaled back)."""


@runtime_checkable
class FrameMatter(Protocol):
    """A frame backend: a batch of RGB frames in, one mask per frame out."""

    @property
    def name(self) -> str:
        """The registered backend name."""

    @property
    def limits(self) -> FrameLimits:
        """Batching, concurrency and rate the pipeline must respect."""

    async def matte(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        """Masks (``uint8``, H x W, 255 = foreground) for ``frames`` (``uint8``, H x W x 3, RGB).

        A mask may come back smaller than its frame; the pipeline scales it up
        and refines its edges against the full-resolution frame.
        """

    def cost_per_call(self) -> Cost:
        """The price of one :meth:`matte` call on one frame."""

    async def aclose(self) -> None:
        """Release connections and models."""


@runtime_checkable
class Uploader(Protocol):
    """Makes a local file reachable by URL for backends that only take URLs."""

    async def upload(self, path: Path, *, content_type: str) -> str:
        """Upload ``path`` and return a URL the provider can fetch."""


class EventKind(enum.StrEnum):
    """Lifecycle events a job emits through the ``vidmatte_job_event`` hook."""

    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    STATE_CHANGED = "state_changed"
    PROGRESS = "progress"
    CHECKPOINT = "checkpoint"
    DOWNLOADED = "downloaded"
    FINISHED = "finished"


@attrs.frozen
class JobEvent:
    """One thing that happened to a job."""

    kind: EventKind
    backend: str
    job_key: str
    """The idempotency key: stable across retries, restarts and reattaches."""
    handle: JobHandle | None = None
    snapshot: JobSnapshot | None = None
    frames_done: int | None = None
    frames_total: int | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    """Event-specific details (checkpoint state, artefact path and SHA-256)."""


def _no_events(event: JobEvent) -> None:
    """Drop events (the default sink)."""


@attrs.frozen
class BackendContext:
    """What the core hands a backend factory."""

    settings: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """This backend's configuration section (``[backends.NAME]`` in TOML plus overrides)."""
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """The environment to read keys from (``os.environ`` in real runs)."""
    transport: httpx.AsyncBaseTransport | None = attrs.field(default=None, repr=False)
    """An injected HTTP transport (tests pass a respx-backed ``httpx.MockTransport``)."""
    clock: Clock = attrs.field(factory=LoopClock)
    limiter: RateLimiter | None = None
    """The backend's shared request budget (created from its capabilities when ``None``)."""
    uploader: Uploader | None = None
    events: Callable[[JobEvent], None] = _no_events
    """Where backends report progress and checkpoints."""
    cache_dir: Path | None = None
    """A folder the backend may keep work in (frame checkpoints)."""


@attrs.frozen
class BackendSpec:
    """A backend as a plugin registers it."""

    name: str
    factory: Callable[[BackendContext], MattingBackend]
    summary: str = ""
    capabilities: Capabilities = attrs.field(factory=Capabilities)
    """Declared statically so listing backends never imports heavy dependencies."""
    secret_settings: tuple[str, ...] = ()
    """Setting names holding secrets (masked by ``vidmatte config show``)."""
    env_vars: tuple[str, ...] = ()
    """Environment variables the backend reads (documented by ``vidmatte backends``)."""
    needs_key: bool = False
    """True when it cannot run without a credential (never chosen as the default)."""
    priority: int = 0
    """Higher wins when choosing a default among keyless backends."""
    distribution: str = ""
    """Filled in by the loader: the distribution the plugin came from."""
    version: str = ""
    """Filled in by the loader: that distribution's version."""


@attrs.frozen
class UploaderSpec:
    """An uploader as a plugin registers it."""

    name: str
    factory: Callable[[BackendContext], Uploader]
    summary: str = ""

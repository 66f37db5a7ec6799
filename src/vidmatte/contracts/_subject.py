"""What a plugin tells the suite: the subject under test."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from vidmatte._models import MattingRequest, MediaInfo, OutputFormat, OutputSpec, Source
from vidmatte.contract import BackendContext, BackendSpec, FrameMatter
from vidmatte.contracts._scenarios import ScenarioSet

__all__ = ["SCENARIOS", "BackendSubject", "Group", "default_frame", "default_request"]


class Group(enum.StrEnum):
    """Contract groups a subject opts into; tests of other groups skip, saying why."""

    CORE = "core"
    """Transport-independent job contract: estimate, handle, states, cost, download, cancel."""
    HTTP = "http"
    """Remote job backends: replayed provider exchanges, errors, retries, keys, protocol errors."""
    TIMING = "timing"
    """Polling pace through :class:`vidmatte.Scheduler`: minimum interval, poll-after, Retry-After."""
    SYNC = "sync"
    """The synchronous facade :class:`vidmatte.Client` over the same backend."""
    FRAMES = "frames"
    """Frame backends: one image request per frame, replayed (``frame_*`` scenarios)."""


SCENARIOS: Mapping[str, str] = {
    # job backends (Group.CORE with HTTP, Group.HTTP, Group.TIMING, Group.SYNC)
    "job_succeeds": "submit, polls through queued/running to succeeded (last poll repeats), result, download",
    "job_fails": "submit, polls ending in the provider's failed status (last poll repeats)",
    "job_flaps": "submit, polls reaching a terminal status, then the provider reports a non-terminal one (repeats)",
    "poll_unknown_status": "submit, a poll with a status string the backend cannot know (repeats)",
    "poll_after": "like job_succeeds, with the provider's poll-after hint on the non-terminal polls",
    "poll_rate_limited": "submit, a poll answered 429 with a Retry-After longer than min_poll_interval, then polls to succeeded",
    "poll_not_found": "submit, a poll answered 404 (repeats)",
    "poll_malformed": "submit, a poll answered 200 with malformed JSON (repeats)",
    "poll_html": "submit, a poll answered 200 with an HTML page (repeats)",
    "poll_transient": "submit, a poll answered 503 (repeats): retries must stop",
    "submit_unauthorized": "submit answered 401 (repeats)",
    "submit_payment_required": "submit answered 402 (repeats)",
    "submit_rejected": "submit answered 400 or 422 (repeats)",
    "submit_transient": "submit answered 503, then 500, then accepted",
    "submit_rate_limited": "submit answered 429 with Retry-After (a few seconds), then accepted",
    "cancel_accepted": "submit, cancel accepted by the provider",
    "cancel_already_terminal": "submit, a poll saying succeeded, cancel answered 'already finished'",
    "download_expired_url": "job_succeeds, the first download answered 403/410 (expired), a re-poll, a fresh URL",
    "download_truncated": "job_succeeds, the download body shorter than its Content-Length (repeats)",
    # frame backends (Group.FRAMES)
    "frame_ok": "one frame request answered with a mask",
    "frame_unauthorized": "a frame request answered 401 (repeats)",
    "frame_rate_limited": "a frame request answered 429 with Retry-After (>= 5 s), then a mask",
    "frame_malformed": "a frame request answered 200 with malformed JSON or bytes that are no image (repeats)",
    "frame_html": "a frame request answered 200 with an HTML page (repeats)",
    "frame_transient": "a frame request answered 503 (repeats): retries must stop",
}
"""The scenario names the suite knows, and what each must record.  A missing one skips its tests."""


def default_request(tmp_path: Path, output: OutputFormat = OutputFormat.WEBM) -> MattingRequest:
    """A 4-second 64x64 clip by URL, already probed: what remote backends are asked to matte."""
    del tmp_path  # remote subjects need no local file
    media = MediaInfo(duration=4.0, fps=25.0, frame_count=100, width=64, height=64, video_codec="h264")
    return MattingRequest(
        source=Source(url="https://media.example.com/contract/clip.mp4"),
        output=OutputSpec(format=output, keep_audio=False),
        media=media,
    )


def default_frame() -> NDArray[np.uint8]:
    """A 48x64 RGB frame: a bright square on a dark background."""
    frame = np.full((48, 64, 3), 20, dtype=np.uint8)
    frame[12:36, 20:44] = 230
    return frame


@attrs.frozen
class BackendSubject:
    """Everything the contract suite needs to know about one backend.

    A plugin builds one of these in its tests (or in a public ``testing``
    module, so others can run the suite over it) and returns it from the
    ``vidmatte_subject`` fixture of a :class:`~vidmatte.contracts.BackendContractSuite` subclass.
    """

    spec: BackendSpec
    """The registered spec: its factory is called with a :class:`BackendContext` whose
    ``transport`` is the replay's ``httpx.MockTransport``."""
    scenarios: ScenarioSet | None = None
    """Recorded exchanges by situation (see :data:`SCENARIOS`); ``None`` for a backend without HTTP."""
    groups: frozenset[Group] = frozenset({Group.CORE, Group.HTTP, Group.TIMING, Group.SYNC})
    """The contract groups that apply to this backend."""
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """The environment handed to the factory (fake keys, never real ones)."""
    settings: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """The backend's settings section handed to the factory."""
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Values that must never appear in errors, logs, reprs or handles (the fake key)."""
    request: Callable[[Path], MattingRequest] = default_request
    """Builds the job the suite submits (receives a temporary folder for local media)."""
    idempotency_header: str | None = "Idempotency-Key"
    """Header carrying the submit's idempotency key; ``None`` if the provider has none."""
    deviations: Mapping[str, str] = attrs.field(factory=dict)
    """Known deviations: test name (``test_x`` or ``test_x[param]``) -> reason.  They run as
    strict xfail, so a fix shows up as a failure asking for the entry to be removed."""
    max_attempts: int = 10
    """The most tries a retried request may take before the error is raised."""
    virtual_time: bool = True
    """Run whole jobs (groups ``core`` and ``sync``) on the virtual-time loop; ``False`` for backends
    whose jobs compute in threads (local, frame pipelines).  Request-level tests always use virtual time."""
    job_timeout: float = 3600.0
    """Seconds (virtual, or real when ``virtual_time`` is off) a job may take in the suite."""
    frame_matter: Callable[[BackendContext], FrameMatter] | None = None
    """For frame backends: builds the :class:`FrameMatter` on a context (Group.FRAMES)."""
    frame: Callable[[], NDArray[np.uint8]] = default_frame
    """The frame sent in ``frame_*`` scenarios."""

    @property
    def name(self) -> str:
        """The backend's registered name."""
        return self.spec.name

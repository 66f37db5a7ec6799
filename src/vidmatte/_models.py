"""The values every part of vidmatte exchanges: frozen attrs classes, JSON-friendly."""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "Artefact",
    "ArtefactRole",
    "Background",
    "CancelOutcome",
    "Capabilities",
    "Cost",
    "CostKind",
    "InputMode",
    "JobError",
    "JobHandle",
    "JobSnapshot",
    "JobState",
    "MattingRequest",
    "MediaInfo",
    "OutputFormat",
    "OutputSpec",
    "Source",
    "format_for_path",
]


class JobState(enum.StrEnum):
    """Where a job is in its life.  Terminal states never change."""

    PENDING = "pending"
    """Journaled locally, not yet submitted (or the submit's outcome is not known yet)."""
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    """The provider said something we do not recognise; polling goes on until the deadline."""

    @property
    def is_terminal(self) -> bool:
        """True for succeeded, failed, cancelled and expired."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED})


class InputMode(enum.StrEnum):
    """How a backend can receive the source video."""

    URL = "url"
    """A URL the provider fetches itself."""
    UPLOAD = "upload"
    """A local file, made reachable by an uploader (hook) before submit."""
    FILE = "file"
    """A local file read directly (local and frame backends)."""
    BYTES = "bytes"
    """Bytes in memory."""


class OutputFormat(enum.StrEnum):
    """Output formats users of matting tools expect."""

    WEBM = "webm"
    """WebM VP9 with alpha (``yuva420p``); audio as Opus."""
    MOV = "mov"
    """QuickTime ProRes 4444 with alpha (``yuva444p10le``); audio as AAC."""
    PNG = "png"
    """A folder of RGBA PNG frames."""
    ZIP = "zip"
    """A zip of RGBA PNG frames."""
    MP4 = "mp4"
    """H.264 composited on a colour (green by default) or an image; audio as AAC."""
    MATTE = "matte"
    """The matte alone, as a grayscale H.264 MP4."""

    @property
    def has_alpha(self) -> bool:
        """True when the format carries a transparent background."""
        return self in {OutputFormat.WEBM, OutputFormat.MOV, OutputFormat.PNG, OutputFormat.ZIP}


_EXTENSIONS = {
    ".webm": OutputFormat.WEBM,
    ".mov": OutputFormat.MOV,
    ".zip": OutputFormat.ZIP,
    ".mp4": OutputFormat.MP4,
    ".m4v": OutputFormat.MP4,
    "": OutputFormat.PNG,
}


def format_for_path(path: str | Path) -> OutputFormat:
    """The output format an output path implies (``.webm``, ``.mov``, ``.zip``, ``.mp4``, folder).

    Raises :class:`~vidmatte.errors.ConfigurationError` for an unknown extension.
    """
    from vidmatte.errors import ConfigurationError

    suffix = Path(path).suffix.lower()
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        known = ", ".join(sorted(e for e in _EXTENSIONS if e))
        raise ConfigurationError(
            f"unknown output extension {suffix!r} in {str(path)!r}; use one of {known} "
            "or a folder name for a PNG sequence"
        ) from None


class ArtefactRole(enum.StrEnum):
    """What an artefact a job produced is."""

    COMPOSITE = "composite"
    MATTE = "matte"
    FOREGROUND = "foreground"
    THUMBNAIL = "thumbnail"


class CostKind(enum.StrEnum):
    """How sure a cost figure is."""

    ESTIMATED = "estimated"
    REPORTED = "reported"
    """Reported by the provider in a response."""
    FINAL = "final"
    """Settled: derived from the finished job by the backend's pricing."""


class CancelOutcome(enum.StrEnum):
    """What a cancel request achieved."""

    ACCEPTED = "accepted"
    ALREADY_TERMINAL = "already_terminal"
    UNSUPPORTED = "unsupported"


@attrs.frozen
class Cost:
    """An amount of money.  Always ``Decimal``, never float."""

    amount: Decimal = attrs.field(converter=Decimal)
    currency: str = "USD"
    kind: CostKind = CostKind.ESTIMATED
    detail: str = ""
    """How it was computed, for people (``"12.0 s x USD 0.001/s"``)."""

    @classmethod
    def zero(cls, kind: CostKind = CostKind.FINAL, detail: str = "free") -> Cost:
        """A zero cost in USD."""
        return cls(Decimal(0), "USD", kind, detail)


@attrs.frozen
class Background:
    """What replaces the background: transparent, a colour, or an image."""

    kind: str = "transparent"
    """``transparent``, ``colour`` or ``image``."""
    colour: tuple[int, int, int] = (0, 255, 0)
    image: str | None = None

    @classmethod
    def parse(cls, text: str) -> Background:
        """Parse ``transparent``, a colour (``green``, ``#00ff00``, ``0,255,0``) or an image path."""
        from vidmatte.errors import ConfigurationError

        value = text.strip()
        lowered = value.lower()
        if lowered in {"", "transparent", "none", "alpha"}:
            return cls()
        if lowered in _NAMED_COLOURS:
            return cls("colour", _NAMED_COLOURS[lowered])
        if lowered.startswith("#") and len(lowered) == 7:
            try:
                return cls("colour", tuple(int(lowered[i : i + 2], 16) for i in (1, 3, 5)))  # type: ignore[arg-type]
            except ValueError:
                pass
        parts = lowered.split(",")
        if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
            rgb = tuple(int(p) for p in parts)
            if all(0 <= c <= 255 for c in rgb):
                return cls("colour", rgb)  # type: ignore[arg-type]
        if Path(value).suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".bmp"}:
            if not Path(value).is_file():
                raise ConfigurationError(f"background image {value!r} does not exist")
            return cls("image", image=value)
        raise ConfigurationError(
            f"background {text!r} is not 'transparent', a colour name, #rrggbb, r,g,b or an image path"
        )

    @property
    def is_transparent(self) -> bool:
        """True when the output keeps an alpha channel instead of a background."""
        return self.kind == "transparent"


_NAMED_COLOURS = {
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "magenta": (255, 0, 255),
}


@attrs.frozen
class Source:
    """The input video: exactly one of a local path, a URL or bytes."""

    path: str | None = None
    url: str | None = None
    data: bytes | None = attrs.field(default=None, repr=lambda d: f"<{len(d)} bytes>" if d else "None")

    def __attrs_post_init__(self) -> None:
        given = sum(v is not None for v in (self.path, self.url, self.data))
        if given != 1:
            from vidmatte.errors import ConfigurationError

            raise ConfigurationError("a source needs exactly one of a path, a URL or bytes")

    @classmethod
    def of(cls, value: str | Path | bytes | Source) -> Source:
        """A source from a path, an ``http(s)://`` URL, raw bytes, or a source."""
        if isinstance(value, Source):
            return value
        if isinstance(value, bytes):
            return cls(data=value)
        text = str(value)
        if text.startswith(("http://", "https://")):
            return cls(url=text)
        return cls(path=text)

    @property
    def mode(self) -> InputMode:
        """How this source reaches a backend without help."""
        if self.url is not None:
            return InputMode.URL
        if self.data is not None:
            return InputMode.BYTES
        return InputMode.FILE

    def describe(self) -> str:
        """A short human description (never the bytes)."""
        if self.path is not None:
            return self.path
        if self.url is not None:
            return self.url.split("?", 1)[0]
        return f"<{len(self.data or b'')} bytes>"


@attrs.frozen
class OutputSpec:
    """What to produce: format, background, audio, and an optional trim."""

    format: OutputFormat = OutputFormat.WEBM
    background: Background = Background()
    keep_audio: bool = True
    trim: tuple[float, float] | None = None
    """(start, end) seconds of the source to keep; ``None`` for all of it."""


@attrs.frozen
class MattingRequest:
    """One background-removal job, provider-neutral."""

    source: Source
    output: OutputSpec = OutputSpec()
    options: dict[str, Any] = attrs.field(factory=dict, hash=False)
    """Backend-specific options; each backend documents its own."""
    media: MediaInfo | None = None
    """The probed source, when the client already knows it."""


@attrs.frozen
class MediaInfo:
    """What a probe learned of a video."""

    duration: float
    fps: float
    frame_count: int
    width: int
    height: int
    rotation: int = 0
    has_audio: bool = False
    video_codec: str = ""
    audio_codec: str | None = None
    size_bytes: int | None = None


@attrs.frozen
class Artefact:
    """One output of a job: where it is, what it is, and until when it is there."""

    role: ArtefactRole
    url: str
    """``https://...`` for remote results, ``file://...`` for local ones."""
    media_type: str = "video/webm"
    has_alpha: bool = True
    expires_at: float | None = None
    """Epoch seconds after which ``url`` stops working (re-poll for a fresh one)."""
    name: str = ""
    format: OutputFormat | None = None
    """The vidmatte output format this file already is, when known: the client then
    delivers it as is instead of converting it to the requested format."""


@attrs.frozen
class JobError:
    """Why a job failed, as the provider put it."""

    message: str
    code: str | None = None


@attrs.frozen
class JobHandle:
    """Enough to find a job again: plain JSON, storable, reattachable by any process."""

    backend: str
    job_id: str
    submitted_at: float
    """Epoch seconds (or the scheduler clock's seconds) at submit."""
    media_duration: float | None = None
    """Seconds of video submitted; the scheduler uses it to predict completion."""
    data: dict[str, str] = attrs.field(factory=dict, hash=False)
    """Provider-specific strings (status URLs, request ids)."""

    def to_json(self) -> str:
        """This handle as a JSON string."""
        from vidmatte._converter import converter

        return json.dumps(converter.unstructure(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobHandle:
        """A handle from :meth:`to_json` output."""
        from vidmatte._converter import converter

        return converter.structure(json.loads(text), cls)


@attrs.frozen
class JobSnapshot:
    """What a poll learned: our state next to everything the provider said."""

    handle: JobHandle
    state: JobState
    raw_status: str | None = None
    """The provider's own status string, kept verbatim."""
    progress: float | None = None
    """0.0 to 1.0 where the provider reports it."""
    queue_position: int | None = None
    poll_after: float | None = None
    """Seconds the provider asks us to wait before the next poll."""
    cost: Cost | None = None
    error: JobError | None = None
    artefacts: tuple[Artefact, ...] = ()
    observed_at: float = 0.0

    def artefact(self, role: ArtefactRole = ArtefactRole.COMPOSITE) -> Artefact | None:
        """The first artefact of ``role`` (or the first artefact at all when none has it)."""
        for artefact in self.artefacts:
            if artefact.role is role:
                return artefact
        return self.artefacts[0] if self.artefacts else None


@attrs.frozen
class Capabilities:
    """What a backend declares it can do; jobs are checked against it before they cost money."""

    input_modes: frozenset[InputMode] = frozenset({InputMode.FILE})
    outputs: frozenset[OutputFormat] = frozenset(OutputFormat)
    """Formats the client can deliver from this backend (after local conversion)."""
    native_output: OutputFormat = OutputFormat.WEBM
    """The format the backend's own artefact comes in."""
    cancel: bool = True
    webhooks: bool = False
    max_duration: float | None = None
    """Seconds of video per job."""
    max_size_bytes: int | None = None
    max_resolution: tuple[int, int] | None = None
    requests_per_minute: float | None = None
    max_concurrency: int | None = None
    min_poll_interval: float = 0.0
    """Seconds; polls closer together are wasted (the provider answers 304)."""
    failed_jobs_charged: bool = False
    cancelled_jobs_charged: bool = False
    idempotent_submit: bool = False
    """True when a submit repeated with the same idempotency key returns the job already
    started instead of starting (and charging) another.  Resume relies on it to reconcile a
    submit whose outcome is unknown; without it such a job is left for the user to check."""
    local: bool = False
    """True when the work runs on this machine (no provider, no money)."""

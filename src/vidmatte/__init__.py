"""vidmatte: remove the background from videos through any provider.

One provider-neutral contract (:class:`MattingBackend`), providers as plugins
found through the ``vidmatte`` entry-point group, and the machinery that makes
paid remote jobs safe, cheap and fast.  Start with :class:`AsyncClient` (or
:class:`Client`, its synchronous facade)::

    import vidmatte

    with vidmatte.Client() as client:
        result = client.remove("clip.mp4", "clip.webm")
"""

from vidmatte._client import AsyncClient, Client, RemoveResult, ResumeOutcome
from vidmatte._clock import Clock, LoopClock
from vidmatte._config import BudgetSettings, Settings, load_settings, structure_settings
from vidmatte._journal import JobRecord, Journal, JournalError
from vidmatte._lifecycle import ALLOWED_TRANSITIONS, can_transition, next_state
from vidmatte._models import (
    Artefact,
    ArtefactRole,
    Background,
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
    MediaInfo,
    OutputFormat,
    OutputSpec,
    Source,
    format_for_path,
)
from vidmatte._plugins import PluginManager, PluginWarning, load_plugins
from vidmatte._pollplan import PollPolicy
from vidmatte._ratelimit import RateLimiter
from vidmatte._scheduler import Scheduler, SchedulerStats
from vidmatte.contract import (
    BackendContext,
    BackendSpec,
    EventKind,
    FrameLimits,
    FrameMatter,
    JobEvent,
    MattingBackend,
    Uploader,
    UploaderSpec,
)
from vidmatte.errors import VidmatteError
from vidmatte.hookspecs import hookimpl

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Artefact",
    "ArtefactRole",
    "AsyncClient",
    "BackendContext",
    "BackendSpec",
    "Background",
    "BudgetSettings",
    "CancelOutcome",
    "Capabilities",
    "Client",
    "Clock",
    "Cost",
    "CostKind",
    "EventKind",
    "FrameLimits",
    "FrameMatter",
    "InputMode",
    "JobError",
    "JobEvent",
    "JobHandle",
    "JobRecord",
    "JobSnapshot",
    "JobState",
    "Journal",
    "JournalError",
    "LoopClock",
    "MattingBackend",
    "MattingRequest",
    "MediaInfo",
    "OutputFormat",
    "OutputSpec",
    "PluginManager",
    "PluginWarning",
    "PollPolicy",
    "RateLimiter",
    "RemoveResult",
    "ResumeOutcome",
    "Scheduler",
    "SchedulerStats",
    "Settings",
    "Source",
    "Uploader",
    "UploaderSpec",
    "VidmatteError",
    "can_transition",
    "format_for_path",
    "hookimpl",
    "load_plugins",
    "load_settings",
    "next_state",
    "structure_settings",
]

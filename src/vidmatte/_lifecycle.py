"""The job state machine: which transitions are allowed, as code."""

from __future__ import annotations

import logging

from vidmatte._models import JobState

__all__ = ["ALLOWED_TRANSITIONS", "can_transition", "next_state"]

_log = logging.getLogger("vidmatte")

_S = JobState
_TERMINAL = frozenset(s for s in JobState if s.is_terminal)

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _S.PENDING: frozenset({_S.QUEUED, _S.RUNNING, _S.UNKNOWN} | _TERMINAL),
    _S.QUEUED: frozenset({_S.QUEUED, _S.RUNNING, _S.UNKNOWN} | _TERMINAL),
    # A running job never goes back to the queue; a provider saying so is noise.
    _S.RUNNING: frozenset({_S.RUNNING, _S.UNKNOWN} | _TERMINAL),
    # Unknown is "we could not tell": any later knowledge is allowed.
    _S.UNKNOWN: frozenset({_S.QUEUED, _S.RUNNING, _S.UNKNOWN} | _TERMINAL),
    **{terminal: frozenset({terminal}) for terminal in _TERMINAL},
}
"""Every state a job may move to from each state (staying put included)."""


def can_transition(current: JobState, new: JobState) -> bool:
    """True when a job in ``current`` may move to ``new``."""
    return new in ALLOWED_TRANSITIONS[current]


def next_state(current: JobState, reported: JobState, *, job_id: str = "") -> JobState:
    """The state to record when a provider reports ``reported`` for a job in ``current``.

    Terminal states are final and a running job does not go back to queued: such
    reports are logged and ignored rather than trusted.
    """
    if can_transition(current, reported):
        return reported
    _log.warning(
        "job %s: ignoring a report of %r after %r (not an allowed transition)",
        job_id,
        reported.value,
        current.value,
    )
    return current

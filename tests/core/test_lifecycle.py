"""The job state machine."""

from __future__ import annotations

import logging

import pytest

from vidmatte import ALLOWED_TRANSITIONS, JobState, can_transition, next_state

TERMINAL = [s for s in JobState if s.is_terminal]


def test_terminal_states_are_exactly_the_four_endings() -> None:
    assert set(TERMINAL) == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}


@pytest.mark.parametrize("terminal", TERMINAL)
@pytest.mark.parametrize("other", list(JobState))
def test_a_terminal_state_never_changes(terminal: JobState, other: JobState) -> None:
    assert can_transition(terminal, other) is (other is terminal)
    assert next_state(terminal, other) is terminal


def test_every_state_has_its_transitions_declared() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (JobState.PENDING, JobState.QUEUED),
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.RUNNING, JobState.SUCCEEDED),
        (JobState.QUEUED, JobState.FAILED),
        (JobState.UNKNOWN, JobState.RUNNING),
        (JobState.RUNNING, JobState.UNKNOWN),
        (JobState.PENDING, JobState.CANCELLED),
    ],
)
def test_forward_moves_are_allowed(current: JobState, new: JobState) -> None:
    assert next_state(current, new) is new


def test_running_does_not_go_back_to_queued_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vidmatte"):
        assert next_state(JobState.RUNNING, JobState.QUEUED, job_id="j1") is JobState.RUNNING
    assert "j1" in caplog.text
    assert "queued" in caplog.text

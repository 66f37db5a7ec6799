"""Hook specifications: how plugins extend vidmatte.

Plugins are found through the ``vidmatte`` entry-point group; each entry point
names a module (or object) carrying functions decorated with :data:`hookimpl`::

    # pyproject.toml
    [project.entry-points.vidmatte]
    mybackend = "vidmatte_mybackend.plugin"

    # vidmatte_mybackend/plugin.py
    from vidmatte.hookspecs import hookimpl

    @hookimpl
    def vidmatte_register_backends():
        return [BackendSpec(name="mybackend", factory=make_backend)]

Hooks evolve by new names and opt-in arguments, never by changing a spec.
"""

from __future__ import annotations

import pluggy

from vidmatte._models import Cost, JobSnapshot, MattingRequest
from vidmatte.contract import BackendSpec, JobEvent, UploaderSpec

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "vidmatte"
"""The pluggy project name and entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification (the core's own)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementation."""


@hookspec
def vidmatte_register_backends() -> list[BackendSpec]:  # type: ignore[empty-body]
    """Return the backends this plugin provides."""


@hookspec
def vidmatte_register_uploaders() -> list[UploaderSpec]:  # type: ignore[empty-body]
    """Return the uploaders this plugin provides (they make local files reachable by URL)."""


@hookspec
def vidmatte_job_event(event: JobEvent) -> None:
    """Observe a job's lifecycle: submitting, submitted, state changes, progress, checkpoints,
    downloads and the end.  Called in order for each job; must not block."""


@hookspec
def vidmatte_cost_estimated(job_key: str, backend: str, request: MattingRequest, cost: Cost) -> None:
    """A job's cost is known before it is submitted.

    Raise :class:`vidmatte.errors.BudgetExceededError` to veto the job: nothing
    is submitted and no money is spent.  Budget implementations reserve the
    amount here and settle it in :func:`vidmatte_cost_incurred`.
    """


@hookspec
def vidmatte_cost_incurred(job_key: str, backend: str, cost: Cost, snapshot: JobSnapshot | None) -> None:
    """A job finished (in any state) and ``cost`` is what it actually cost (zero when it
    never ran or was not charged).  Every estimate is followed by exactly one of these."""

"""The suite's working parts: building a backend on a replay, driving jobs, scanning for secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from vidmatte._lifecycle import can_transition
from vidmatte._models import JobHandle, JobSnapshot, MattingRequest
from vidmatte.contract import BackendContext, FrameMatter, MattingBackend
from vidmatte.contracts._replay import Replay
from vidmatte.contracts._scenarios import Scenario
from vidmatte.contracts._subject import BackendSubject, Group
from vidmatte.testing import run_virtual

__all__ = ["IDEMPOTENCY_KEY", "Harness", "exception_texts"]

T = TypeVar("T")

IDEMPOTENCY_KEY = "vidmatte-contract-idem-5f2c9a"
"""The idempotency key the suite submits with."""

_EMPTY = Scenario(name="(no requests expected)", exchanges=())


class Harness:
    """One test's view of the subject: replays, backends on them, virtual time, checks."""

    def __init__(self, subject: BackendSubject, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        self.subject = subject
        self.tmp_path = tmp_path
        self.caplog = caplog

    # -- skipping with reasons -------------------------------------------------------------
    def require(self, group: Group) -> None:
        """Skip unless the subject opted into ``group``."""
        if group not in self.subject.groups:
            reason = {
                Group.HTTP: "makes no remote job requests",
                Group.FRAMES: "is not a frame backend",
                Group.TIMING: "is not polled by the scheduler",
                Group.SYNC: "is not run through the sync client here",
                Group.CORE: "opts out of the job contract",
            }[group]
            pytest.skip(f"backend '{self.name}' {reason} (contract group '{group}' not declared)")

    def require_capability(self, flag: str, *, declared: bool = True) -> None:
        """Skip unless the backend's capability ``flag`` is (or, with ``declared=False``, is not) set."""
        value = bool(getattr(self.subject.spec.capabilities, flag))
        if value != declared:
            verb = "does not declare" if declared else "declares"
            pytest.skip(f"backend '{self.name}' {verb} {flag.replace('_', ' ')}")

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.subject.name

    # -- replays and backends --------------------------------------------------------------
    @property
    def has_http(self) -> bool:
        """True when the subject talks HTTP (it supplies scenarios)."""
        return self.subject.scenarios is not None

    @property
    def remote_jobs(self) -> bool:
        """True for remote job backends (group ``http``): the provider runs, cancels and hosts the job."""
        return Group.HTTP in self.subject.groups

    def replay(self, scenario: str) -> Replay | None:
        """A replay of ``scenario``; ``None`` for subjects without HTTP; skips when not supplied."""
        if self.subject.scenarios is None:
            return None
        found = self.subject.scenarios.get(scenario)
        if found is None:
            pytest.skip(f"backend '{self.name}' supplies no '{scenario}' scenario")
        return Replay(found)

    def http_replay(self, scenario: str) -> Replay:
        """Like :meth:`replay`, for tests that only make sense over HTTP."""
        replay = self.replay(scenario)
        if replay is None:
            pytest.skip(f"backend '{self.name}' makes no HTTP requests")
        return replay

    def idle_replay(self) -> Replay:
        """A replay expecting no request at all."""
        return Replay(_EMPTY)

    def context(self, replay: Replay | None) -> BackendContext:
        """The context the factory gets: the subject's settings and env, the replay's transport."""
        cache = self.tmp_path / "cache"
        cache.mkdir(exist_ok=True)
        return BackendContext(
            settings=dict(self.subject.settings),
            env=dict(self.subject.env),
            transport=replay.transport if replay is not None else None,
            cache_dir=cache,
        )

    def build(self, replay: Replay | None) -> MattingBackend:
        """A fresh backend from the registered factory."""
        return self.subject.spec.factory(self.context(replay))

    @asynccontextmanager
    async def backend(self, replay: Replay | None) -> AsyncIterator[MattingBackend]:
        """A fresh backend, closed afterwards."""
        backend = self.build(replay)
        try:
            yield backend
        finally:
            await backend.aclose()

    @asynccontextmanager
    async def frame_matter(self, replay: Replay) -> AsyncIterator[FrameMatter]:
        """A fresh frame matter on ``replay``, closed afterwards."""
        if self.subject.frame_matter is None:
            pytest.skip(f"backend '{self.name}' supplies no frame_matter factory")
        matter = self.subject.frame_matter(self.context(replay))
        try:
            yield matter
        finally:
            await matter.aclose()

    def request(self) -> MattingRequest:
        """The job the suite submits."""
        folder = self.tmp_path / "media"
        folder.mkdir(exist_ok=True)
        return self.subject.request(folder)

    # -- running ---------------------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the virtual-time loop (request-level tests: no real waiting, ever)."""
        return run_virtual(coro)

    def run_job(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a whole job: virtual time, or real time for subjects whose jobs compute in threads."""
        if self.subject.virtual_time:
            return run_virtual(coro)
        return asyncio.run(coro)

    async def drive(self, backend: MattingBackend, handle: JobHandle) -> list[JobSnapshot]:
        """Poll ``handle`` until a terminal state, pacing like a polite scheduler; all snapshots."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.subject.job_timeout
        floor = max(backend.capabilities.min_poll_interval, 0.05)
        snapshots: list[JobSnapshot] = []
        for _ in range(1000):
            snapshot = await backend.poll(handle)
            snapshots.append(snapshot)
            if snapshot.state.is_terminal:
                return snapshots
            if loop.time() > deadline:
                break
            await asyncio.sleep(max(floor, snapshot.poll_after or 0.0))
        states = " -> ".join(s.state.value for s in snapshots[-10:])
        raise AssertionError(f"backend '{self.name}': job never reached a terminal state (last: {states})")

    async def assert_stays_terminal(
        self, backend: MattingBackend, handle: JobHandle, final: JobSnapshot, *, polls: int = 3, pause: float = 0.0
    ) -> None:
        """Poll a finished job ``polls`` more times: its terminal state and artefacts must not change."""
        for _ in range(polls):
            if pause:
                await asyncio.sleep(pause)
            again = await backend.poll(handle)
            assert again.state is final.state, (
                f"terminal {final.state.value!r} became {again.state.value!r} "
                f"when the provider said {again.raw_status!r}: terminal states are final"
            )
            assert bool(again.artefacts) == bool(final.artefacts), "a finished job lost its artefacts"

    # -- checks ----------------------------------------------------------------------------
    def no_unexpected(self, replay: Replay | None) -> None:
        """Fail when the backend made a request its scenario does not contain."""
        if replay is not None and replay.unexpected:
            raise AssertionError(
                f"backend '{self.name}' made requests scenario {replay.scenario.name!r} does not contain\n"
                + replay.transcript()
            )

    def check_forward(self, snapshots: Iterable[JobSnapshot]) -> None:
        """Each snapshot's state is an allowed successor of the one before."""
        previous = None
        for snapshot in snapshots:
            if previous is not None:
                assert can_transition(previous.state, snapshot.state), (
                    f"backend '{self.name}' moved {previous.state.value!r} -> {snapshot.state.value!r} "
                    f"(raw {previous.raw_status!r} -> {snapshot.raw_status!r}): states only move forward"
                )
            previous = snapshot

    def leaks(self, texts: Iterable[str]) -> list[str]:
        """The texts containing one of the subject's secrets (shortened, secret masked)."""
        found = []
        for text in texts:
            for secret in self.subject.secrets:
                if secret and secret in text:
                    found.append(text.replace(secret, "<SECRET>")[:300])
        return found

    def log_texts(self) -> list[str]:
        """Every captured log record, formatted, with its raw arguments."""
        texts = []
        for record in self.caplog.records:
            texts.append(record.getMessage())
            texts.append(repr(record.args))
            if record.exc_text:
                texts.append(record.exc_text)
        return texts


def exception_texts(exc: BaseException) -> list[str]:
    """Everything an exception shows: str, repr, args, attributes, notes, its whole chain."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts += [repr(v) for v in vars(current).values()]
        texts += [str(note) for note in getattr(current, "__notes__", [])]
        current = current.__cause__ or current.__context__
    return texts


def log_all(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every logger at DEBUG (to find secrets in logs)."""
    caplog.set_level(logging.DEBUG)

"""Group ``sync``: the clients over the same backend (``vidmatte.Client`` and ``vidmatte.AsyncClient``)."""

from __future__ import annotations

# ruff: noqa: PT018 - compound asserts with one message read better in a conformance suite
from pathlib import Path
from typing import Any

import pytest

import vidmatte
from vidmatte._config import Settings
from vidmatte._models import CostKind, JobHandle, JobState
from vidmatte._plugins import PluginManager
from vidmatte.contract import BackendSpec
from vidmatte.contracts._harness import IDEMPOTENCY_KEY, Harness
from vidmatte.contracts._replay import Replay
from vidmatte.contracts._subject import Group
from vidmatte.hookspecs import hookimpl
from vidmatte.testing import VirtualTimeLoop

__all__ = ["SyncContract"]


class _SubjectPlugin:
    """Registers the subject's spec, as its entry point would."""

    def __init__(self, spec: BackendSpec) -> None:
        self._spec = spec

    @hookimpl
    def vidmatte_register_backends(self) -> list[BackendSpec]:
        """The one backend under test."""
        return [self._spec]


def client_kwargs(h: Harness, replay: Replay | None) -> dict[str, Any]:
    """Constructor arguments for a client on the subject's backend and the replay."""
    plugins = PluginManager()
    plugins.register(_SubjectPlugin(h.subject.spec), name=f"contract:{h.name}")
    settings = Settings(
        backend=h.name,
        journal=str(h.tmp_path / "journal.sqlite3"),
        backends={h.name: dict(h.subject.settings)},
    )
    cache = h.tmp_path / "client-cache"
    cache.mkdir(exist_ok=True)
    return {
        "backend": h.name,
        "settings": settings,
        "plugins": plugins,
        "transport": replay.transport if replay is not None else None,
        "environ": dict(h.subject.env),
        "cache_dir": cache,
        **({} if h.subject.virtual_time else {"scheduler": brisk_scheduler()}),
    }


def brisk_scheduler() -> Any:
    """A scheduler polling every fraction of a second: for jobs that compute in this process on
    real time, where the default plan (tuned for minute-scale remote jobs) would wait seconds."""
    from vidmatte._pollplan import PollPolicy

    policy = PollPolicy(prior_queue=0.0, prior_speed=0.05, target_gap=0.05, max_gap=0.2, unknown_first=0.05)
    return vidmatte.Scheduler(policy=policy)


def sync_client(h: Harness, replay: Replay | None) -> Any:
    """A ``vidmatte.Client`` on the virtual-time loop (real time for subjects that opt out)."""
    loop_factory = VirtualTimeLoop if h.subject.virtual_time else None
    return client_class("Client")(loop_factory=loop_factory, **client_kwargs(h, replay))


def client_class(name: str) -> Any:
    """``vidmatte.<name>``, or a skip naming what is missing."""
    found = getattr(vidmatte, name, None)
    if found is None:
        pytest.skip(f"vidmatte.{name} is not available in this vidmatte version")
    return found


def check_delivered(h: Harness, replay: Replay | None, dest: Path) -> None:
    """A remote artefact lands byte for byte (it is already in the asked format); a local one decodes with alpha."""
    assert dest.exists(), "the client produced nothing at dest"
    if h.remote_jobs and replay is not None:
        bodies = [c.exchange.body for c in replay.of_role("download") if c.exchange and c.exchange.status == 200]
        assert bodies, "no artefact was downloaded\n" + replay.transcript()
        assert dest.read_bytes() == bodies[-1], "the client changed an artefact already in the asked format"
        return
    from vidmatte.media import read_frames_rgba

    frames = list(read_frames_rgba(dest))
    assert frames, f"{dest.name} holds no frames"
    assert frames[0].ndim == 3 and frames[0].shape[2] == 4, "the delivered video has no alpha channel"


class SyncContract:
    """One job end to end through the clients: the sync facade drives the same async code."""

    def _dest(self, h: Harness) -> Path:
        fmt = h.subject.spec.capabilities.native_output
        folder = h.tmp_path / "client-out"
        folder.mkdir(exist_ok=True)
        return folder / f"result.{fmt.value}"

    def test_sync_client_runs_a_job(self, vidmatte_harness: Harness) -> None:
        """``vidmatte.Client.remove`` submits, waits, downloads; the artefact lands at dest."""
        h = vidmatte_harness
        h.require(Group.SYNC)
        replay = h.replay("job_succeeds")
        request = h.request()
        dest = self._dest(h)
        with sync_client(h, replay) as client:
            result = client.remove(request.source, dest, format=request.output.format, keep_audio=False)
        assert result.snapshot.state is JobState.SUCCEEDED
        assert result.cost is not None
        assert result.cost.kind is not CostKind.ESTIMATED
        h.no_unexpected(replay)
        check_delivered(h, replay, dest)

    def test_sync_client_reattaches_a_handle_from_json(self, vidmatte_harness: Harness) -> None:
        """A handle submitted by one client, as JSON, is picked up and waited for by another."""
        h = vidmatte_harness
        h.require(Group.SYNC)
        replay = h.replay("job_succeeds")
        request = h.request()
        with sync_client(h, replay) as first, sync_client(h, replay) as second:
            handle = first.submit(request, idempotency_key=IDEMPOTENCY_KEY)
            text = handle.to_json()
            seen = second.reattach(text)
            final = second.wait(JobHandle.from_json(text), timeout=h.subject.job_timeout)
        h.no_unexpected(replay)
        assert seen.handle.job_id == handle.job_id, "reattach polled another job"
        assert final.state is JobState.SUCCEEDED, f"the reattached job ended {final.state.value!r}"

    def test_async_client_runs_a_job(self, vidmatte_harness: Harness) -> None:
        """``vidmatte.AsyncClient.remove`` on the virtual clock: same result as the sync facade."""
        h = vidmatte_harness
        h.require(Group.SYNC)
        cls = client_class("AsyncClient")
        replay = h.replay("job_succeeds")
        request = h.request()
        dest = self._dest(h)

        async def go() -> None:
            async with cls(**client_kwargs(h, replay)) as client:
                await client.remove(request.source, dest, format=request.output.format, keep_audio=False)

        h.run_job(go())
        h.no_unexpected(replay)
        check_delivered(h, replay, dest)

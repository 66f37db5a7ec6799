"""Group ``sync``: the clients over the same backend (``vidmatte.Client`` and ``vidmatte.AsyncClient``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vidmatte
from vidmatte._config import Settings
from vidmatte._plugins import PluginManager
from vidmatte.contract import BackendSpec
from vidmatte.contracts._harness import Harness
from vidmatte.contracts._replay import Replay
from vidmatte.contracts._subject import Group
from vidmatte.hookspecs import hookimpl

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
    return {
        "backend": h.name,
        "settings": settings,
        "plugins": plugins,
        "transport": replay.transport if replay is not None else None,
        "environ": dict(h.subject.env),
    }


def client_class(name: str) -> Any:
    """``vidmatte.<name>``, or a skip naming what is missing."""
    found = getattr(vidmatte, name, None)
    if found is None:
        pytest.skip(f"vidmatte.{name} is not available in this vidmatte version")
    return found


def served_bytes(replay: Replay | None) -> bytes | None:
    """The last artefact body the replay served (``None`` without HTTP)."""
    if replay is None:
        return None
    bodies = [c.exchange.body for c in replay.of_role("download") if c.exchange and c.exchange.status == 200]
    assert bodies, "no artefact was downloaded\n" + replay.transcript()
    return bodies[-1]


class SyncContract:
    """One job end to end through the clients: the sync facade drives the same async code."""

    def _dest(self, h: Harness) -> Path:
        fmt = h.subject.spec.capabilities.native_output
        return h.tmp_path / "client-out" / f"result.{fmt.value}"

    def test_sync_client_runs_a_job(self, vidmatte_harness: Harness) -> None:
        """``vidmatte.Client.remove`` submits, waits, downloads; the artefact lands at dest."""
        h = vidmatte_harness
        h.require(Group.SYNC)
        cls = client_class("Client")
        replay = h.replay("job_succeeds")
        request = h.request()
        dest = self._dest(h)
        with cls(**client_kwargs(h, replay)) as client:
            client.remove(request.source, dest, format=request.output.format, keep_audio=False)
        h.no_unexpected(replay)
        assert dest.exists(), "the sync client produced nothing at dest"
        body = served_bytes(replay)
        if body is not None:
            assert dest.read_bytes() == body, "the sync client changed an artefact already in the asked format"

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
        assert dest.exists(), "the async client produced nothing at dest"
        body = served_bytes(replay)
        if body is not None:
            assert dest.read_bytes() == body

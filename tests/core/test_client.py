"""The client: hooks in order, cost settlement, capability checks, and the sync facade."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import vidmatte
from tests.core.conftest import ScriptedPlugin
from vidmatte import AsyncClient, Client, CostKind, JobHandle, JobState, PluginManager, Source, hookimpl
from vidmatte.errors import BudgetExceededError, ConfigurationError, JobFailedError, UnsupportedCapabilityError
from vidmatte.testing import VirtualTimeLoop, run_virtual


def _client(manager: PluginManager, **kwargs: object) -> AsyncClient:
    return AsyncClient(plugins=manager, environ={}, settings=vidmatte.Settings(backend="scripted"), **kwargs)  # type: ignore[arg-type]


def test_remove_fires_hooks_in_order_and_settles_the_cost(
    manager: PluginManager, scripted_plugin: ScriptedPlugin, tmp_path: Path
) -> None:
    async def main() -> vidmatte.RemoveResult:
        async with _client(manager) as client:
            return await client.remove("https://example.test/clip.mp4", tmp_path / "out.webm")

    result = run_virtual(main())
    assert (tmp_path / "out.webm").read_bytes() == b"matted video bytes"
    assert result.cost.kind is CostKind.FINAL
    assert result.cost.amount == Decimal("0.012")
    names = [name for name, _ in scripted_plugin.calls]
    assert names[:3] == ["cost_estimated", "event:submitting", "event:submitted"]
    assert names[-3:] == ["cost_incurred", "event:finished", "event:downloaded"]
    assert names.count("event:state_changed") == 3  # queued, running, succeeded
    backend = scripted_plugin.backends[0]
    assert backend.closed
    ((_, key),) = [(r, k) for r, k in backend.submitted]
    assert key == result.job_key


def test_a_budget_veto_stops_the_job_before_submit(
    manager: PluginManager, scripted_plugin: ScriptedPlugin, tmp_path: Path
) -> None:
    class Budget:
        @hookimpl
        def vidmatte_cost_estimated(self, job_key: str, backend: str, request: object, cost: vidmatte.Cost) -> None:
            raise BudgetExceededError(f"{cost.amount} is over the limit")

    manager.register(Budget())

    async def main() -> None:
        async with _client(manager) as client:
            await client.remove("https://example.test/clip.mp4", tmp_path / "out.webm")

    with pytest.raises(BudgetExceededError, match="over the limit"):
        run_virtual(main())
    assert scripted_plugin.backends[0].submitted == []
    incurred = [c for name, c in scripted_plugin.calls if name == "cost_incurred"]
    assert [c.amount for c in incurred] == [Decimal(0)]  # type: ignore[attr-defined]
    assert not (tmp_path / "out.webm").exists()


def test_a_failed_job_costs_nothing_and_raises(tmp_path: Path) -> None:
    plugin = ScriptedPlugin([JobState.RUNNING, JobState.FAILED])
    manager = PluginManager()
    manager.register(plugin)

    async def main() -> None:
        async with _client(manager) as client:
            await client.remove("https://example.test/clip.mp4", tmp_path / "out.webm")

    with pytest.raises(JobFailedError, match="the model crashed") as info:
        run_virtual(main())
    assert info.value.code == "model_error"
    incurred = [c for name, c in plugin.calls if name == "cost_incurred"]
    assert [c.amount for c in incurred] == [Decimal(0)]  # type: ignore[attr-defined]
    assert not (tmp_path / "out.webm").exists()


def test_requests_are_checked_before_money_is_spent(manager: PluginManager, tmp_path: Path) -> None:
    client = _client(manager)
    with pytest.raises(ConfigurationError, match="transparent background needs a format with alpha"):
        client.request("https://example.test/a.mp4", dest=tmp_path / "o.mp4", background="transparent")
    with pytest.raises(ConfigurationError, match=r"unknown output extension '\.avi'"):
        client.request("https://example.test/a.mp4", dest=tmp_path / "o.avi")
    with pytest.raises(vidmatte.errors.MediaError, match="does not exist"):
        client.request(str(tmp_path / "missing.mp4"), dest=tmp_path / "o.webm")
    mp4 = client.request("https://example.test/a.mp4", dest=tmp_path / "o.mp4")
    assert mp4.output.background.colour == (0, 255, 0)


def test_capabilities_refuse_what_the_backend_cannot_do(manager: PluginManager) -> None:
    async def main() -> None:
        client = _client(manager)
        backend = client.backend()
        backend.capabilities = vidmatte.Capabilities(input_modes=frozenset({vidmatte.InputMode.FILE}))  # type: ignore[misc]
        request = vidmatte.MattingRequest(Source(url="https://example.test/a.mp4"))
        await client.submit(request)

    with pytest.raises(UnsupportedCapabilityError, match="does not take URLs"):
        run_virtual(main())


def test_handles_survive_json_and_reattach(manager: PluginManager) -> None:
    async def main() -> tuple[str, vidmatte.JobSnapshot]:
        async with _client(manager) as client:
            handle = await client.submit(client.request("https://example.test/a.mp4"))
            text = handle.to_json()
        async with _client(manager) as other:
            return text, await other.reattach(text)

    text, snapshot = run_virtual(main())
    assert JobHandle.from_json(text).job_id == snapshot.handle.job_id
    assert snapshot.state is JobState.QUEUED


def test_the_sync_facade_drives_the_same_code(
    manager: PluginManager, scripted_plugin: ScriptedPlugin, tmp_path: Path
) -> None:
    settings = vidmatte.Settings(backend="scripted")
    with Client(plugins=manager, environ={}, settings=settings, loop_factory=VirtualTimeLoop) as client:
        handle = client.submit(client.request("https://example.test/a.mp4"))
        snapshot = client.wait(handle)
        assert snapshot.state is JobState.SUCCEEDED
        digest = client.download(handle, snapshot, tmp_path / "o.webm", vidmatte.OutputSpec())
        assert client.cancel(handle) is vidmatte.CancelOutcome.ACCEPTED
    assert (tmp_path / "o.webm").read_bytes() == b"matted video bytes"
    assert digest is not None
    assert len(digest) == 64
    assert [n for n, _ in scripted_plugin.calls].count("cost_incurred") == 1


def test_the_default_backend_is_the_offline_one() -> None:
    client = AsyncClient(environ={})
    assert client.backend_name() == "local"


def test_the_api_journals_by_default_so_paid_jobs_are_recoverable(manager: PluginManager) -> None:
    import os

    client = _client(manager)
    assert client.journal is not None
    assert str(client.journal.path).startswith(os.environ["XDG_DATA_HOME"])
    run_virtual(client.aclose())
    off = AsyncClient(plugins=manager, environ={}, settings=vidmatte.Settings(backend="scripted"), journal=False)
    assert off.journal is None
    run_virtual(off.aclose())

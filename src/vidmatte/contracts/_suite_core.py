"""Group ``core``: the job contract every backend keeps, with or without HTTP."""

from __future__ import annotations

# ruff: noqa: PT018 - compound asserts with one message read better in a conformance suite
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from vidmatte._models import CancelOutcome, Capabilities, Cost, CostKind, JobHandle, JobState
from vidmatte.contracts._harness import IDEMPOTENCY_KEY, Harness
from vidmatte.contracts._subject import Group

__all__ = ["CoreContract"]


class CoreContract:
    """Estimate, submit, handle, states, cost, download and cancel: transport-independent."""

    def test_capabilities_match_registration(self, vidmatte_harness: Harness) -> None:
        """The instance declares what the registered spec declared (listing never lies)."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.idle_replay() if h.has_http else None

        async def go() -> None:
            async with h.backend(replay) as backend:
                assert backend.name == h.subject.spec.name, f"backend.name {backend.name!r} != registered name"
                assert isinstance(backend.capabilities, Capabilities)
                assert backend.capabilities == h.subject.spec.capabilities, (
                    f"backend '{h.name}': instance capabilities differ from the registered BackendSpec's"
                )
                assert backend.capabilities.min_poll_interval >= 0

        h.run_job(go())
        h.no_unexpected(replay)

    def test_estimate_exists_before_submit(self, vidmatte_harness: Harness) -> None:
        """An estimate in Decimal money, needing no provider request and starting no job."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.idle_replay() if h.has_http else None

        async def go() -> Cost:
            async with h.backend(replay) as backend:
                return await backend.estimate(h.request())

        cost = h.run_job(go())
        h.no_unexpected(replay)
        assert isinstance(cost, Cost), f"estimate returned {cost!r}, not a Cost"
        assert isinstance(cost.amount, Decimal)
        assert cost.amount >= 0
        assert cost.kind is CostKind.ESTIMATED, f"an estimate is CostKind.ESTIMATED, got {cost.kind}"
        if h.subject.spec.capabilities.local:
            assert cost.amount == 0, "a local backend costs nothing"

    def test_submit_returns_reattachable_handle(self, vidmatte_harness: Harness) -> None:
        """The handle survives JSON, and a fresh backend instance picks the job up from it."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.replay("job_succeeds")

        async def go() -> tuple[JobHandle, str, JobState]:
            async with h.backend(replay) as first:
                handle = await first.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
            text = handle.to_json()
            async with h.backend(replay) as second:
                snapshots = await h.drive(second, JobHandle.from_json(text))
            assert all(s.handle.job_id == handle.job_id for s in snapshots), "snapshots name another job"
            return handle, text, snapshots[-1].state

        handle, text, state = h.run_job(go())
        h.no_unexpected(replay)
        assert handle.backend == h.name, f"handle.backend is {handle.backend!r}, not {h.name!r}"
        assert handle.job_id, "handle.job_id is empty"
        assert JobHandle.from_json(text) == handle, "the handle changed in a JSON round trip"
        assert not h.leaks([text, repr(handle)]), "the handle (stored in journals) holds the key"
        assert state is JobState.SUCCEEDED, f"the reattached job ended {state.value!r}, not succeeded"

    def test_states_only_move_forward(self, vidmatte_harness: Harness) -> None:
        """Every observed transition is allowed (queued -> running -> succeeded, never back)."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.replay("job_succeeds")

        async def go() -> list[JobState]:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                snapshots = await h.drive(backend, handle)
            h.check_forward(snapshots)
            return [s.state for s in snapshots]

        states = h.run_job(go())
        h.no_unexpected(replay)
        assert states[-1] is JobState.SUCCEEDED, f"job ended {states[-1].value!r}"

    def test_terminal_state_is_final(self, vidmatte_harness: Harness) -> None:
        """Polling a finished job again returns the same terminal state and artefacts."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.replay("job_succeeds")

        async def go() -> None:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                final = (await h.drive(backend, handle))[-1]
                await h.assert_stays_terminal(backend, handle, final)

        h.run_job(go())
        h.no_unexpected(replay)

    def test_cost_after_terminal_state(self, vidmatte_harness: Harness) -> None:
        """A finished job carries its cost (reported or final), in the estimate's currency."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.replay("job_succeeds")

        async def go() -> tuple[Cost, Cost | None]:
            async with h.backend(replay) as backend:
                request = h.request()
                estimate = await backend.estimate(request)
                handle = await backend.submit(request, idempotency_key=IDEMPOTENCY_KEY)
                return estimate, (await h.drive(backend, handle))[-1].cost

        estimate, cost = h.run_job(go())
        h.no_unexpected(replay)
        assert cost is not None, f"backend '{h.name}': a succeeded snapshot carries no cost"
        assert isinstance(cost.amount, Decimal)
        assert cost.amount >= 0
        assert cost.kind is not CostKind.ESTIMATED, "the cost after the job is reported or final, not estimated"
        assert cost.currency == estimate.currency, f"estimate in {estimate.currency}, cost in {cost.currency}"
        if h.subject.spec.capabilities.local:
            assert cost.amount == 0, "a local backend costs nothing"

    def test_download_streams_to_temp_then_renames(self, vidmatte_harness: Harness) -> None:
        """The artefact appears at ``dest`` only once complete, and nothing else is left behind."""
        h = vidmatte_harness
        h.require(Group.CORE)
        replay = h.replay("job_succeeds")
        out = h.tmp_path / "out"
        out.mkdir()
        dest = out / "result.bin"
        seen_early: list[int] = []
        artefact_url: list[str] = []
        if replay is not None:
            replay.on_download_chunk = lambda offset: seen_early.append(offset) if dest.exists() else None

        async def go() -> None:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                final = (await h.drive(backend, handle))[-1]
                artefact = final.artefact()
                assert artefact is not None, "a succeeded job has no artefact"
                artefact_url.append(artefact.url)
                await backend.download(handle, artefact, dest)

        h.run_job(go())
        h.no_unexpected(replay)
        assert dest.is_file() and dest.stat().st_size > 0, "nothing was downloaded"
        assert not seen_early, f"'{dest.name}' existed while the download was still streaming (write a temp file)"
        leftovers = sorted(p.name for p in out.iterdir() if p != dest)
        assert not leftovers, f"temporary files left next to the download: {leftovers}"
        served = [] if replay is None else [c.exchange.body for c in replay.of_role("download") if c.exchange]
        if h.remote_jobs:
            assert served, "a remote job's artefact was not downloaded from the provider"
        if served:
            assert dest.read_bytes() == served[-1], "the downloaded bytes differ from what was served"
        elif artefact_url[0].startswith("file://"):
            source = Path(url2pathname(urlsplit(artefact_url[0]).path))
            assert dest.read_bytes() == source.read_bytes(), "the delivered file differs from the artefact"

    def test_cancel_already_terminal(self, vidmatte_harness: Harness) -> None:
        """Cancelling a finished job reports ALREADY_TERMINAL and leaves it finished."""
        h = vidmatte_harness
        h.require(Group.CORE)
        h.require_capability("cancel")
        replay = h.replay("cancel_already_terminal")

        async def go() -> tuple[CancelOutcome, JobState, JobState]:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                final = (await h.drive(backend, handle))[-1]
                outcome = await backend.cancel(handle)
                return outcome, final.state, (await backend.poll(handle)).state

        outcome, before, after = h.run_job(go())
        h.no_unexpected(replay)
        assert outcome is CancelOutcome.ALREADY_TERMINAL, f"cancel of a finished job said {outcome!r}"
        assert after is before, f"cancel changed a finished job from {before.value!r} to {after.value!r}"

    def test_cancel_accepted(self, vidmatte_harness: Harness) -> None:
        """Cancelling a job in flight is accepted (a local job may already have finished)."""
        h = vidmatte_harness
        h.require(Group.CORE)
        h.require_capability("cancel")
        replay = h.replay("cancel_accepted")

        async def go() -> CancelOutcome:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                return await backend.cancel(handle)

        outcome = h.run_job(go())
        h.no_unexpected(replay)
        # A job running in this process may finish before the cancel lands; a remote one is the provider's call.
        allowed = (
            {CancelOutcome.ACCEPTED} if h.remote_jobs else {CancelOutcome.ACCEPTED, CancelOutcome.ALREADY_TERMINAL}
        )
        assert outcome in allowed, f"cancel of a job in flight said {outcome!r}"
        if h.remote_jobs and replay is not None:
            assert replay.of_role("cancel"), "cancel reported ACCEPTED without asking the provider"

    def test_cancel_unsupported_without_capability(self, vidmatte_harness: Harness) -> None:
        """A backend that does not declare cancel says UNSUPPORTED and sends nothing."""
        h = vidmatte_harness
        h.require(Group.CORE)
        h.require_capability("cancel", declared=False)
        replay = h.replay("job_succeeds")

        async def go() -> CancelOutcome:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                return await backend.cancel(handle)

        outcome = h.run_job(go())
        h.no_unexpected(replay)
        assert outcome is CancelOutcome.UNSUPPORTED, f"cancel without the capability said {outcome!r}"

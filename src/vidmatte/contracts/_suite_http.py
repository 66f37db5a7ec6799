"""Group ``http``: remote job backends against replayed provider exchanges."""

from __future__ import annotations

# ruff: noqa: PT018 - compound asserts with one message read better in a conformance suite
import asyncio

import pytest

from vidmatte._models import JobHandle, JobSnapshot, JobState
from vidmatte.contracts._harness import IDEMPOTENCY_KEY, Harness, exception_texts, log_all
from vidmatte.contracts._replay import Replay
from vidmatte.contracts._subject import SCENARIOS, Group
from vidmatte.errors import (
    AuthenticationError,
    NotFoundError,
    PaymentRequiredError,
    ProtocolError,
    RateLimitedError,
    RequestRejectedError,
    TransientError,
    VidmatteError,
)

__all__ = ["HttpContract"]

ERROR_CASES: dict[str, tuple[str, type[VidmatteError]]] = {
    "submit_unauthorized": ("submit", AuthenticationError),
    "submit_payment_required": ("submit", PaymentRequiredError),
    "submit_rejected": ("submit", RequestRejectedError),
    "poll_not_found": ("poll", NotFoundError),
    "poll_transient": ("poll", TransientError),
}
"""Scenario -> (operation that meets the error, the error it must raise)."""

_NEEDS: dict[str, tuple[str, ...]] = {
    "job": ("submit", "poll"),
    "poll": ("submit", "poll"),
    "submit": ("submit",),
    "cancel": ("submit",),
    "download": ("submit", "poll", "download"),
}
"""Roles each family of scenarios (by name prefix) must record."""

NOT_RETRIED = ("submit_unauthorized", "submit_payment_required", "submit_rejected", "poll_not_found")
PROTOCOL_CASES = ("poll_malformed", "poll_html")


async def provoke(h: Harness, replay: Replay, operation: str) -> tuple[VidmatteError | None, JobHandle | None]:
    """Run ``operation`` (``submit`` or ``poll`` after a submit) and return the error it raised."""
    handle = None
    async with h.backend(replay) as backend:
        try:
            handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
            if operation == "poll":
                await backend.poll(handle)
        except VidmatteError as exc:
            return exc, handle
    return None, handle


def retry_after_of(replay: Replay, role: str) -> float:
    """The Retry-After seconds of the scenario's first 429 for ``role``."""
    for exchange in replay.scenario.of_role(role):
        if exchange.status == 429 and "retry-after" in exchange.headers:
            return float(exchange.headers["retry-after"])
    raise AssertionError(f"scenario {replay.scenario.name!r} records no 429 with Retry-After for {role}")


async def _leak_probe(h: Harness, replay: Replay, operation: str) -> tuple[VidmatteError | None, list[str]]:
    """Run ``operation`` and return its error and everything shown along the way (reprs, handle JSON)."""
    shown: list[str] = []
    async with h.backend(replay) as backend:
        shown += [repr(backend), str(backend)]
        try:
            handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
            shown += [repr(handle), handle.to_json()]
            if operation == "poll":
                shown.append(repr(await backend.poll(handle)))
        except VidmatteError as error:
            return error, shown
    return None, shown


class HttpContract:
    """Statuses, errors, retries, idempotency, keys, downloads: what a provider can throw at a backend."""

    # -- the scenarios themselves --------------------------------------------------------------
    def test_supplied_scenarios_record_their_situation(self, vidmatte_harness: Harness) -> None:
        """Each known scenario a plugin supplies holds the requests its situation needs (catches typos early)."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        if h.subject.scenarios is None:
            pytest.skip(f"backend '{h.name}' makes no HTTP requests")
        problems = []
        for name in h.subject.scenarios:
            scenario = h.subject.scenarios.get(name)
            needs = _NEEDS.get(name.split("_", 1)[0], ())
            if scenario is None or name not in SCENARIOS:
                continue
            roles = {e.role for e in scenario.exchanges}
            missing = [role for role in needs if role not in roles]
            if missing:
                problems.append(f"{name}: no {', '.join(missing)} exchange (roles seen: {sorted(roles)})")
            if name.endswith(("_rate_limited",)) and not any(
                e.status == 429 and "retry-after" in e.headers for e in scenario.exchanges
            ):
                problems.append(f"{name}: no 429 with a Retry-After header")
        assert not problems, "scenarios that cannot test their situation:\n" + "\n".join(problems)

    # -- statuses ---------------------------------------------------------------------------
    def test_raw_status_is_kept(self, vidmatte_harness: Harness) -> None:
        """Each snapshot keeps the provider's status string verbatim next to ours."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("job_succeeds")

        async def go() -> None:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                for _ in range(50):
                    before = len(replay.calls)
                    snapshot = await backend.poll(handle)
                    said = set().union(*(c.strings() for c in replay.calls[before:] if c.role in {"poll", "result"}))
                    assert snapshot.raw_status, f"snapshot in state {snapshot.state.value!r} has no raw_status"
                    assert snapshot.raw_status in said, (
                        f"raw_status {snapshot.raw_status!r} is not what the provider said (it said {sorted(said)})"
                    )
                    if snapshot.state.is_terminal:
                        return
                    await asyncio.sleep(max(backend.capabilities.min_poll_interval, snapshot.poll_after or 0, 0.05))
                raise AssertionError("job never finished")

        h.run(go())
        h.no_unexpected(replay)

    def test_unknown_status_becomes_unknown(self, vidmatte_harness: Harness) -> None:
        """A status the backend cannot know is UNKNOWN (raw status kept), not a crash."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("poll_unknown_status")

        async def go() -> JobSnapshot:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                return await backend.poll(handle)

        snapshot = h.run(go())
        h.no_unexpected(replay)
        assert snapshot.state is JobState.UNKNOWN, f"an unknown provider status became {snapshot.state.value!r}"
        said = set().union(*(c.strings() for c in replay.of_role("poll")))
        assert snapshot.raw_status in said, f"raw_status {snapshot.raw_status!r} is not the provider's status"

    def test_terminal_state_is_final_when_provider_flaps(self, vidmatte_harness: Harness) -> None:
        """After a terminal state, a provider reporting a live status again changes nothing."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("job_flaps")

        async def go() -> None:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                final = (await h.drive(backend, handle))[-1]
                pause = max(backend.capabilities.min_poll_interval, 0.05)
                await h.assert_stays_terminal(backend, handle, final, pause=pause)

        h.run(go())
        h.no_unexpected(replay)

    def test_failed_job_follows_charging_policy(self, vidmatte_harness: Harness) -> None:
        """A failed job says why, and costs what ``Capabilities.failed_jobs_charged`` declares."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("job_fails")

        async def go() -> JobSnapshot:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                return (await h.drive(backend, handle))[-1]

        final = h.run(go())
        h.no_unexpected(replay)
        assert final.state is JobState.FAILED, f"a failed job ended {final.state.value!r}"
        assert final.error is not None and final.error.message, "a failed snapshot carries no error message"
        assert final.cost is not None, "a failed snapshot carries no cost (zero when not charged)"
        if h.subject.spec.capabilities.failed_jobs_charged:
            assert final.cost.amount > 0, "the backend declares failed jobs charged, but the cost is zero"
        else:
            assert final.cost.amount == 0, f"failed jobs are declared free, but cost {final.cost.amount}"

    # -- errors ------------------------------------------------------------------------------
    @pytest.mark.parametrize("scenario", sorted(ERROR_CASES))
    def test_errors_map_into_hierarchy_with_context(self, vidmatte_harness: Harness, scenario: str) -> None:
        """Each provider error becomes its vidmatte error, carrying backend, job and status."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay(scenario)
        operation, expected = ERROR_CASES[scenario]
        exc, handle = h.run(provoke(h, replay, operation))
        h.no_unexpected(replay)
        assert exc is not None, f"{operation} succeeded in scenario {scenario!r}; expected {expected.__name__}"
        assert isinstance(exc, expected), f"{scenario}: raised {type(exc).__name__}, expected {expected.__name__}"
        assert exc.backend == h.name, f"{type(exc).__name__}.backend is {exc.backend!r}, not {h.name!r}"
        failing = [c for c in replay.calls if c.role == operation and c.exchange and c.exchange.status >= 400]
        assert failing, replay.transcript()
        said = failing[-1].exchange.status if failing[-1].exchange is not None else None
        assert exc.status_code == said, f"{type(exc).__name__}.status_code is {exc.status_code!r}, not {said}"
        assert exc.retryable is issubclass(expected, (TransientError, RateLimitedError))
        if operation == "poll":
            assert handle is not None and exc.job_id == handle.job_id, f"error names job {exc.job_id!r}"

    @pytest.mark.parametrize("scenario", PROTOCOL_CASES)
    def test_malformed_and_html_responses_raise_protocol_error(self, vidmatte_harness: Harness, scenario: str) -> None:
        """A 200 with broken JSON or an HTML page is a ProtocolError naming backend and job."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay(scenario)
        exc, handle = h.run(provoke(h, replay, "poll"))
        h.no_unexpected(replay)
        assert isinstance(exc, ProtocolError), f"{scenario}: got {exc!r}, expected ProtocolError"
        assert exc.backend == h.name
        assert handle is not None
        assert exc.job_id == handle.job_id

    # -- retries -----------------------------------------------------------------------------
    @pytest.mark.parametrize("scenario", NOT_RETRIED)
    def test_non_retryable_errors_are_not_retried(self, vidmatte_harness: Harness, scenario: str) -> None:
        """401, 402, 4xx and 404 are sent once: repeating them only burns quota."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay(scenario)
        operation, expected = ERROR_CASES[scenario]
        exc, _ = h.run(provoke(h, replay, operation))
        h.no_unexpected(replay)
        assert isinstance(exc, expected), f"{scenario}: got {exc!r}"
        sent = len(replay.of_role(operation))
        assert sent == 1, f"a {expected.__name__} was retried: {sent} {operation} requests\n{replay.transcript()}"

    def test_retryable_errors_are_retried_boundedly(self, vidmatte_harness: Harness) -> None:
        """A provider stuck on 503 gets a bounded number of tries, then a TransientError."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("poll_transient")

        async def go() -> tuple[VidmatteError | None, float]:
            loop = asyncio.get_running_loop()
            start = loop.time()
            exc, _ = await provoke(h, replay, "poll")
            return exc, loop.time() - start

        exc, elapsed = h.run(go())
        h.no_unexpected(replay)
        assert isinstance(exc, TransientError) and exc.retryable, f"got {exc!r}, expected a retryable TransientError"
        polls = len(replay.of_role("poll"))
        assert polls <= h.subject.max_attempts, f"{polls} tries of a failing poll (max {h.subject.max_attempts})"
        assert elapsed <= 900, f"one poll kept retrying for {elapsed:.0f} s"

    def test_submit_retries_reuse_one_idempotency_key(self, vidmatte_harness: Harness) -> None:
        """Every POST of one logical submit carries the same idempotency key; one job results."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        header = h.subject.idempotency_header
        if header is None:
            pytest.skip(f"backend '{h.name}' declares no idempotency header")
        replay = h.http_replay("submit_transient")

        async def go() -> JobHandle:
            async with h.backend(replay) as backend:
                # The caller retries what the backend gives up on, always with the same key.
                for _ in range(h.subject.max_attempts):
                    try:
                        return await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                    except (TransientError, RateLimitedError) as exc:
                        await asyncio.sleep(getattr(exc, "retry_after", None) or 1.0)
                raise AssertionError("submit never succeeded")

        handle = h.run(go())
        h.no_unexpected(replay)
        posts = replay.of_role("submit")
        keys = [c.request.headers.get(header) for c in posts]
        recorded = len(replay.scenario.of_role("submit"))
        assert len(posts) == recorded, f"{len(posts)} submit requests for {recorded} recorded\n{replay.transcript()}"
        assert len(set(keys)) == 1 and keys[0] == IDEMPOTENCY_KEY, (
            f"the {header} header changed across retries of one submit: {keys} (expected {IDEMPOTENCY_KEY!r})"
        )
        assert handle.job_id

    def test_submit_honours_retry_after(self, vidmatte_harness: Harness) -> None:
        """After a 429, the next submit waits Retry-After (or the error carries it to the caller)."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("submit_rate_limited")
        wanted = retry_after_of(replay, "submit")
        exc, _ = h.run(provoke(h, replay, "submit"))
        h.no_unexpected(replay)
        posts = replay.of_role("submit")
        if exc is not None:
            assert isinstance(exc, RateLimitedError), f"got {exc!r}"
            assert exc.retry_after is not None and exc.retry_after >= wanted - 1e-6, (
                f"RateLimitedError.retry_after is {exc.retry_after!r}; the provider said {wanted}"
            )
            assert len(posts) == 1, f"retried before Retry-After passed\n{replay.transcript()}"
            return
        assert len(posts) >= 2, replay.transcript()
        gap = posts[1].at - posts[0].at
        assert gap >= wanted - 1e-6, f"resubmitted {gap:.2f} s after a 429 asking for {wanted} s"

    # -- secrets -----------------------------------------------------------------------------
    def test_secret_never_leaks(self, vidmatte_harness: Harness) -> None:
        """The key reaches the provider and nothing else: not errors, logs, reprs or handles."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        if not h.subject.secrets:
            pytest.skip(f"backend '{h.name}' declares no secrets")
        log_all(h.caplog)
        cases = {"job_succeeds": "poll", **{k: v[0] for k, v in ERROR_CASES.items()}}
        cases.update(dict.fromkeys(PROTOCOL_CASES, "poll"))
        ran = texts_sent = 0
        leaked: list[str] = []
        for scenario, operation in cases.items():
            if h.subject.scenarios is None or scenario not in h.subject.scenarios:
                continue
            found = h.subject.scenarios.get(scenario)
            assert found is not None
            replay = Replay(found)
            exc, shown = h.run(_leak_probe(h, replay, operation))
            ran += 1
            texts = shown + (exception_texts(exc) if exc is not None else [])
            leaked += [f"[{scenario}] {text}" for text in h.leaks(texts)]
            texts_sent += sum(
                1
                for call in replay.calls
                if h.leaks([str(call.request.url), *(str(v) for v in call.request.headers.values())])
            )
        leaked += [f"[log] {text}" for text in h.leaks(h.log_texts())]
        assert ran, f"backend '{h.name}' supplies none of the scenarios this test replays"
        assert not leaked, "the key leaked:\n" + "\n".join(leaked)
        assert texts_sent, "the declared secret was never sent to the provider: declare the key the backend uses"

    # -- downloads ---------------------------------------------------------------------------
    def test_expired_result_url_is_refreshed(self, vidmatte_harness: Harness) -> None:
        """A download whose signed URL expired fetches a fresh URL and completes."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("download_expired_url")
        dest = h.tmp_path / "expired" / "result.bin"

        async def go() -> None:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                final = (await h.drive(backend, handle))[-1]
                artefact = final.artefact()
                assert artefact is not None, "a succeeded job has no artefact"
                await backend.download(handle, artefact, dest)

        h.run(go())
        h.no_unexpected(replay)
        downloads = replay.of_role("download")
        assert downloads and downloads[0].exchange is not None and downloads[0].exchange.status >= 400, (
            "the scenario's first download must be the expired one\n" + replay.transcript()
        )
        first_failed = replay.calls.index(downloads[0])
        refreshed = [c for c in replay.calls[first_failed:] if c.role in {"poll", "result"}]
        assert refreshed, "the backend retried the expired URL without asking the provider for a fresh one"
        good = [c.exchange.body for c in downloads if c.exchange and c.exchange.status == 200]
        assert good and dest.read_bytes() == good[-1], "the refreshed download did not land at dest"

    def test_truncated_download_leaves_nothing(self, vidmatte_harness: Harness) -> None:
        """A body shorter than its Content-Length raises a retryable error and leaves no file."""
        h = vidmatte_harness
        h.require(Group.HTTP)
        replay = h.http_replay("download_truncated")
        out = h.tmp_path / "truncated"
        out.mkdir()
        dest = out / "result.bin"

        async def go() -> VidmatteError | None:
            async with h.backend(replay) as backend:
                handle = await backend.submit(h.request(), idempotency_key=IDEMPOTENCY_KEY)
                final = (await h.drive(backend, handle))[-1]
                artefact = final.artefact()
                assert artefact is not None, "a succeeded job has no artefact"
                try:
                    await backend.download(handle, artefact, dest)
                except VidmatteError as exc:
                    return exc
            return None

        exc = h.run(go())
        h.no_unexpected(replay)
        assert isinstance(exc, TransientError), f"a truncated download gave {exc!r}, expected TransientError"
        assert not list(out.iterdir()), f"left behind: {sorted(p.name for p in out.iterdir())}"
        assert len(replay.of_role("download")) <= h.subject.max_attempts

"""Group ``frames``: frame backends, one image request per frame, replayed."""

from __future__ import annotations

# ruff: noqa: PT018 - compound asserts with one message read better in a conformance suite
from decimal import Decimal

import numpy as np
import pytest
from numpy.typing import NDArray

from vidmatte._models import Cost
from vidmatte.contracts._harness import Harness, exception_texts, log_all
from vidmatte.contracts._replay import Replay
from vidmatte.contracts._subject import Group
from vidmatte.errors import AuthenticationError, ProtocolError, RateLimitedError, TransientError, VidmatteError

__all__ = ["FrameContract"]

FRAME_ERRORS: dict[str, type[VidmatteError]] = {
    "frame_unauthorized": AuthenticationError,
    "frame_malformed": ProtocolError,
    "frame_html": ProtocolError,
    "frame_transient": TransientError,
}


async def matte_once(h: Harness, replay: Replay) -> tuple[list[NDArray[np.uint8]] | None, VidmatteError | None, str]:
    """One :meth:`FrameMatter.matte` call on the subject's frame: (masks, error, repr of the matter)."""
    async with h.frame_matter(replay) as matter:
        shown = repr(matter)
        try:
            return list(await matter.matte([h.subject.frame()])), None, shown
        except VidmatteError as exc:
            return None, exc, shown


def frame_calls(replay: Replay) -> int:
    """Requests the matter made (frame scenarios record them as ``other`` or ``submit``)."""
    return len(replay.calls)


class FrameContract:
    """Masks in order and shape; errors mapped; 401 not retried; Retry-After honoured; no key leaks."""

    def test_frame_returns_one_mask_per_frame(self, vidmatte_harness: Harness) -> None:
        """A frame comes back as a uint8 H x W mask (maybe smaller; the pipeline scales it)."""
        h = vidmatte_harness
        h.require(Group.FRAMES)
        replay = h.http_replay("frame_ok")
        masks, exc, _ = h.run(matte_once(h, replay))
        h.no_unexpected(replay)
        assert exc is None, f"matte raised {exc!r}"
        assert masks is not None and len(masks) == 1, f"{0 if masks is None else len(masks)} masks for 1 frame"
        mask = masks[0]
        assert mask.dtype == np.uint8 and mask.ndim == 2, f"mask is {mask.dtype} with shape {mask.shape}"
        frame = h.subject.frame()
        ratio = (mask.shape[0] / frame.shape[0], mask.shape[1] / frame.shape[1])
        assert abs(ratio[0] - ratio[1]) < 0.1, f"mask {mask.shape} does not keep the frame's aspect {frame.shape}"

    def test_frame_cost_per_call_is_money(self, vidmatte_harness: Harness) -> None:
        """The price of one frame call is a Decimal cost (zero is fine for free APIs)."""
        h = vidmatte_harness
        h.require(Group.FRAMES)
        replay = h.idle_replay()

        async def go() -> Cost:
            async with h.frame_matter(replay) as matter:
                return matter.cost_per_call()

        cost = h.run(go())
        h.no_unexpected(replay)
        assert isinstance(cost, Cost)
        assert isinstance(cost.amount, Decimal)
        assert cost.amount >= 0

    @pytest.mark.parametrize("scenario", sorted(FRAME_ERRORS))
    def test_frame_errors_map_into_hierarchy(self, vidmatte_harness: Harness, scenario: str) -> None:
        """A failing frame request raises the matching vidmatte error naming the backend."""
        h = vidmatte_harness
        h.require(Group.FRAMES)
        replay = h.http_replay(scenario)
        expected = FRAME_ERRORS[scenario]
        _, exc, _ = h.run(matte_once(h, replay))
        h.no_unexpected(replay)
        assert isinstance(exc, expected), f"{scenario}: got {exc!r}, expected {expected.__name__}"
        assert exc.backend == h.name, f"error names backend {exc.backend!r}"
        if expected is TransientError:
            assert frame_calls(replay) <= h.subject.max_attempts, f"{frame_calls(replay)} tries of a failing frame"

    def test_frame_unauthorized_is_not_retried(self, vidmatte_harness: Harness) -> None:
        """A 401 on a frame is sent once."""
        h = vidmatte_harness
        h.require(Group.FRAMES)
        replay = h.http_replay("frame_unauthorized")
        _, exc, _ = h.run(matte_once(h, replay))
        assert isinstance(exc, AuthenticationError), f"got {exc!r}"
        assert frame_calls(replay) == 1, f"a 401 was retried\n{replay.transcript()}"

    def test_frame_honours_retry_after(self, vidmatte_harness: Harness) -> None:
        """After a 429, the next frame request waits Retry-After (or the error carries it)."""
        h = vidmatte_harness
        h.require(Group.FRAMES)
        replay = h.http_replay("frame_rate_limited")
        limited = [e for e in replay.scenario.exchanges if e.status == 429 and "retry-after" in e.headers]
        assert limited, "scenario 'frame_rate_limited' records no 429 with Retry-After"
        wanted = float(limited[0].headers["retry-after"])
        _, exc, _ = h.run(matte_once(h, replay))
        h.no_unexpected(replay)
        if exc is not None:
            assert isinstance(exc, RateLimitedError) and (exc.retry_after or 0) >= wanted - 1e-6, f"got {exc!r}"
            return
        assert len(replay.calls) >= 2
        gap = replay.calls[1].at - replay.calls[0].at
        assert gap >= wanted - 1e-6, f"retried {gap:.2f} s after a 429 asking for {wanted} s"

    def test_frame_secret_never_leaks(self, vidmatte_harness: Harness) -> None:
        """The key is sent, and never shows in errors, logs or reprs."""
        h = vidmatte_harness
        h.require(Group.FRAMES)
        if not h.subject.secrets:
            pytest.skip(f"backend '{h.name}' declares no secrets")
        log_all(h.caplog)
        leaked: list[str] = []
        sent = ran = 0
        for scenario in ("frame_ok", *sorted(FRAME_ERRORS)):
            found = h.subject.scenarios.get(scenario) if h.subject.scenarios else None
            if found is None:
                continue
            replay = Replay(found)
            _, exc, shown = h.run(matte_once(h, replay))
            ran += 1
            leaked += [f"[{scenario}] {t}" for t in h.leaks([shown, *(exception_texts(exc) if exc else [])])]
            sent += sum(
                1 for c in replay.calls if h.leaks([str(c.request.url), *(str(v) for v in c.request.headers.values())])
            )
        leaked += [f"[log] {t}" for t in h.leaks(h.log_texts())]
        assert ran, "no frame scenario supplied"
        assert not leaked, "the key leaked:\n" + "\n".join(leaked)
        assert sent, "the declared secret was never sent: declare the key the backend uses"

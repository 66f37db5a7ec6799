"""Unit tests of the falqueue backend beyond the contract: parsing, settings, where the key goes."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx
from vidmatte_falqueue import CAPABILITIES, FalQueueBackend
from vidmatte_falqueue._backend import STATUSES
from vidmatte_falqueue._settings import load
from vidmatte_falqueue.plugin import make_backend, vidmatte_register_backends
from vidmatte_falqueue.testing import FAKE_KEY

from vidmatte import BackendContext, JobHandle, JobState, MattingRequest, Source
from vidmatte.errors import ConfigurationError, UnsupportedCapabilityError
from vidmatte.testing import run_virtual

QUEUE = "https://queue.fal.run"


def backend(router: respx.Router, **settings: object) -> FalQueueBackend:
    context = BackendContext(
        settings=settings, env={"FAL_KEY": FAKE_KEY}, transport=httpx.MockTransport(router.handler)
    )
    made = make_backend(context)
    assert isinstance(made, FalQueueBackend)
    return made


def test_spec_declares_the_instance_capabilities() -> None:
    (spec,) = vidmatte_register_backends()
    assert spec.capabilities is CAPABILITIES
    assert spec.needs_key
    assert spec.env_vars == ("FAL_KEY",)


def test_missing_key_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="set FAL_KEY"):
        load({}, {})
    with pytest.raises(ConfigurationError, match=r"backends\.falqueue"):
        load({"modle": "x"}, {"FAL_KEY": FAKE_KEY})


def test_repr_and_settings_hide_the_key() -> None:
    settings = load({}, {"FAL_KEY": FAKE_KEY})
    router = respx.Router()
    assert FAKE_KEY not in repr(settings)
    assert FAKE_KEY not in repr(backend(router))


@pytest.mark.parametrize(("raw", "state"), [*STATUSES.items(), ("in_progress", JobState.RUNNING)])
def test_status_table(raw: str, state: JobState) -> None:
    assert STATUSES.get(raw.upper()) is state


def test_estimate_without_duration_prices_the_maximum() -> None:
    router = respx.Router()
    cost = run_virtual(
        backend(router, price_per_second="0.002").estimate(MattingRequest(Source(url="https://x.test/a.mp4")))
    )
    assert cost.amount == Decimal("1.200")
    assert "maximum" in cost.detail


def test_submit_refuses_local_files() -> None:
    router = respx.Router()
    with pytest.raises(UnsupportedCapabilityError, match="uploader"):
        run_virtual(backend(router).submit(MattingRequest(Source(path="clip.mp4")), idempotency_key="k"))


def test_key_goes_only_to_the_queue_host() -> None:
    """A status URL on another host (as a provider answer could name) gets no Authorization header."""
    router = respx.Router(assert_all_called=False)
    seen: dict[str, str | None] = {}

    def status(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("authorization")
        return httpx.Response(200, json={"status": "IN_QUEUE", "queue_position": 4})

    router.get(url__regex=r"https://(queue\.fal\.run|elsewhere\.test)/.*").mock(side_effect=status)
    b = backend(router)
    for host in ("queue.fal.run", "elsewhere.test"):
        handle = JobHandle("falqueue", "r1", 0.0, data={"status_url": f"https://{host}/m/requests/r1/status"})
        snapshot = run_virtual(b.poll(handle))
        assert snapshot.state is JobState.QUEUED
        assert snapshot.queue_position == 4
    assert seen == {"queue.fal.run": f"Key {FAKE_KEY}", "elsewhere.test": None}


def test_submit_sends_the_configured_input_field_and_keeps_urls_in_the_handle() -> None:
    router = respx.Router()
    route = router.post(f"{QUEUE}/fal-ai/ben/v2/video").mock(
        return_value=httpx.Response(
            200, json={"request_id": "r9", "status_url": f"{QUEUE}/s", "response_url": f"{QUEUE}/r"}
        )
    )
    b = backend(router, input_field="video")
    handle = run_virtual(b.submit(MattingRequest(Source(url="https://x.test/a.mp4")), idempotency_key="idem-1"))
    sent = route.calls.last.request
    assert sent.headers["idempotency-key"] == "idem-1"
    assert httpx.Response(200, content=sent.content).json() == {"video": "https://x.test/a.mp4"}
    assert handle.job_id == "r9"
    assert handle.data == {"status_url": f"{QUEUE}/s", "response_url": f"{QUEUE}/r"}
    assert FAKE_KEY not in handle.to_json()

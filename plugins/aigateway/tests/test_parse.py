"""Reading job records in every documented variant, and what they cost."""

from __future__ import annotations

from decimal import Decimal

import pytest
from vidmatte_aigateway import parse_job, pick_input_field
from vidmatte_aigateway._parse import parse_timestamp

from vidmatte import CostKind, JobHandle, JobState, OutputFormat
from vidmatte.errors import ProtocolError

HANDLE = JobHandle("aigateway", "job_1", submitted_at=0.0, media_duration=12.5)
PRICE = Decimal("0.0010")
URL = "https://media.aigateway.sh/v1/files/jobs/job_1/output.webm?sig=abc"


def parse(body: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return parse_job(body, HANDLE, headers=headers, price_per_second=PRICE)


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("queued", JobState.QUEUED),
        ("processing", JobState.RUNNING),
        ("running", JobState.RUNNING),
        ("RUNNING", JobState.RUNNING),
        ("cancelled", JobState.CANCELLED),
        ("canceled", JobState.CANCELLED),
        ("failed", JobState.FAILED),
        ("warming_up", JobState.UNKNOWN),
        (None, JobState.UNKNOWN),
    ],
)
def test_states(raw: str | None, state: JobState) -> None:
    snapshot = parse({"id": "job_1", "status": raw})
    assert snapshot.state is state
    assert snapshot.raw_status == raw


@pytest.mark.parametrize(
    "body",
    [
        {"status": "completed", "result": {"url": URL, "duration": 12.0}},
        {"status": "completed", "result": {"file_url": URL, "duration": 12.0}},
        {"status": "completed", "result_url": URL, "result": {"duration": 12.0}},
        {"status": "completed", "result": URL, "usage": {}},
    ],
)
def test_result_in_every_place(body: dict[str, object]) -> None:
    snapshot = parse(body)
    assert snapshot.state is JobState.SUCCEEDED
    artefact = snapshot.artefact()
    assert artefact is not None
    assert artefact.url == URL
    assert artefact.media_type == "video/webm"
    assert artefact.format is OutputFormat.WEBM
    assert artefact.name == "output.webm"


def test_unknown_output_type_gets_no_format() -> None:
    snapshot = parse({"status": "completed", "result_url": "https://media.aigateway.sh/f/out.bin"})
    artefact = snapshot.artefact()
    assert artefact is not None
    assert artefact.format is None
    assert artefact.media_type == "application/octet-stream"


def test_completed_without_url_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="no result URL"):
        parse({"status": "completed", "result": {}})


def test_not_an_object_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse(["status", "completed"])


def test_error_object_and_string() -> None:
    failed = parse({"status": "failed", "error": {"code": "bad_input", "message": "cannot decode"}})
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == ("bad_input", "cannot decode")
    failed = parse({"status": "failed", "error": "cannot decode"})
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == (None, "cannot decode")
    failed = parse({"status": "failed"})
    assert failed.error is not None


def test_cost_from_result_duration_is_final() -> None:
    cost = parse({"status": "completed", "result": {"url": URL, "duration": 12.0}}).cost
    assert cost is not None
    assert cost.kind is CostKind.FINAL
    assert cost.amount == Decimal("0.012")


def test_cost_from_submitted_duration_when_result_has_none() -> None:
    cost = parse({"status": "completed", "result_url": URL}).cost
    assert cost is not None
    assert cost.kind is CostKind.FINAL
    assert cost.amount == Decimal("0.0125")
    assert "submitted" in cost.detail


def test_reported_cost_header_and_usage() -> None:
    body = {"status": "completed", "result": {"url": URL, "duration": 12.0}}
    cost = parse(body, {"X-Cost-Cents": "1.25"}).cost
    assert cost is not None
    assert (cost.kind, cost.amount) == (CostKind.REPORTED, Decimal("0.0125"))
    cost = parse({**body, "usage": {"cost_cents": 1.3}}).cost
    assert cost is not None
    assert (cost.kind, cost.amount) == (CostKind.REPORTED, Decimal("0.013"))


def test_failed_and_cancelled_jobs_cost_nothing() -> None:
    for status in ("failed", "cancelled"):
        cost = parse({"status": status}).cost
        assert cost is not None
        assert cost.amount == 0
        assert cost.kind is CostKind.FINAL


def test_running_jobs_have_no_cost_yet() -> None:
    assert parse({"status": "processing", "usage": {"cost_cents": 3}}).cost is None


def test_money_is_decimal_never_float() -> None:
    cost = parse({"status": "completed", "result": {"url": URL, "duration": 0.1}}).cost
    assert cost is not None
    assert isinstance(cost.amount, Decimal)
    assert cost.amount == Decimal("0.0001")


def test_progress_queue_position_and_expiry_guesses() -> None:
    snapshot = parse({"status": "processing", "progress": 40, "queue_position": 3})
    assert snapshot.progress == pytest.approx(0.4)
    assert snapshot.queue_position == 3
    done = parse({"status": "completed", "result": {"url": URL, "expires_at": "2026-11-28T10:00:00Z"}})
    artefact = done.artefact()
    assert artefact is not None
    assert artefact.expires_at == parse_timestamp("2026-11-28T10:00:00+00:00")
    assert parse_timestamp(1_800_000_000_000) == 1_800_000_000.0
    assert parse_timestamp("nonsense") is None


def test_schema_field_discovery() -> None:
    assert pick_input_field({"input": {"properties": {"prompt": {}, "video": {}}}}) == "video"
    assert pick_input_field({"properties": {"input_video": {}, "video_url": {}}}) == "video_url"
    assert pick_input_field({"parameters": {"properties": {"source_video_uri": {}}}}) == "source_video_uri"
    assert pick_input_field({"nothing": 1}) == "video_url"
    assert pick_input_field(["odd"]) == "video_url"

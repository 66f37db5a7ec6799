"""Write the falqueue replay scenarios (src/vidmatte_falqueue/scenarios/*.json).

There is no live fal-style service reachable from where this plugin was
written, so the exchanges are transcribed from the provider's documented
protocol (vidmatte's reference/providers.md, section 4) rather than captured:
each is marked ``"source": "transcribed"``.  With a key and network, capture
real exchanges instead by wrapping a real transport in
``vidmatte.contracts.RecordingTransport`` and diff them against these.

Run: python examples/falqueue/scripts/make_scenarios.py
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src" / "vidmatte_falqueue" / "scenarios"
FAKE_KEY = "falkey-contract-0a1b2c3d4e5f"
QUEUE = "https://queue.fal.run"
MODEL = "fal-ai/ben/v2/video"
REQ = "req-7c1f0e"
APP = f"{QUEUE}/fal-ai/ben/requests/{REQ}"
CDN = "https://v3.fal.media/files/contract/result.webm"


def ex(role: str, method: str, url: str, status: int = 200, *, repeat: bool = False, **response: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "role": role,
        "request": {"method": method, "url": url},
        "response": {"status": status, **response},
    }
    if repeat:
        item["repeat"] = True
    return item


SUBMIT = ex(
    "submit",
    "POST",
    f"{QUEUE}/{MODEL}",
    json={
        "request_id": REQ,
        "status_url": f"{APP}/status",
        "response_url": APP,
        "cancel_url": f"{APP}/cancel",
        "queue_position": 2,
    },
)


def status(state: str, *, repeat: bool = False, headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    body = {"status": state, "response_url": APP, **extra}
    return ex("poll", "GET", f"{APP}/status", repeat=repeat, json=body, headers=headers or {})


def result(url: str = CDN, *, repeat: bool = True) -> dict[str, Any]:
    video = {"url": url, "content_type": "video/webm", "file_name": "result.webm", "file_size": 0}
    return ex("result", "GET", APP, repeat=repeat, json={"video": video})


def download(url: str = CDN, *, repeat: bool = False, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return ex(
        "download",
        "GET",
        url,
        repeat=repeat,
        file="result.webm",
        headers={"content-type": "video/webm", **(headers or {})},
    )


SUCCESS_POLLS = [status("IN_QUEUE", queue_position=1), status("IN_PROGRESS"), status("COMPLETED", repeat=True)]


def error(
    status_code: int, detail: Any, role: str = "submit", url: str = f"{QUEUE}/{MODEL}", method: str = "POST", **kw: Any
) -> dict[str, Any]:
    return ex(role, method, url, status_code, json={"detail": detail}, **kw)


def tiny_webm() -> bytes:
    """Eight 32x32 VP9 frames with alpha: a real artefact, small enough to keep in the repository."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuva420p"
        for i in range(8):
            rgba = np.zeros((32, 32, 4), dtype=np.uint8)
            rgba[8:24, 4 + i : 20 + i] = (200, 40, 40, 255)
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


SCENARIOS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "job_succeeds": (
        "queued twice, running, completed; result on the CDN",
        [SUBMIT, *SUCCESS_POLLS, result(), download(repeat=True)],
    ),
    "job_fails": (
        "the job completes with an error (fal reports failures on COMPLETED)",
        [
            SUBMIT,
            status("IN_PROGRESS"),
            status("COMPLETED", repeat=True, error="input video could not be decoded", error_type="video_decode_error"),
        ],
    ),
    "job_flaps": (
        "completed, then the provider says IN_PROGRESS again",
        [SUBMIT, status("IN_PROGRESS"), status("COMPLETED"), status("IN_PROGRESS", repeat=True), result()],
    ),
    "poll_unknown_status": ("a status this backend cannot know", [SUBMIT, status("WARMING_UP", repeat=True)]),
    "poll_after": (
        "Retry-After on status answers paces polling",
        [
            SUBMIT,
            status("IN_QUEUE", headers={"retry-after": "5"}),
            status("IN_PROGRESS", headers={"retry-after": "3"}),
            status("COMPLETED", repeat=True),
            result(),
        ],
    ),
    "poll_rate_limited": (
        "a poll answered 429, Retry-After 30",
        [
            SUBMIT,
            error(429, "Too many requests", "poll", f"{APP}/status", "GET", headers={"retry-after": "30"}),
            status("IN_PROGRESS"),
            status("COMPLETED", repeat=True),
            result(),
        ],
    ),
    "poll_not_found": (
        "the queue forgot the request",
        [SUBMIT, error(404, "Request not found", "poll", f"{APP}/status", "GET", repeat=True)],
    ),
    "poll_malformed": (
        "a status answer cut short",
        [
            SUBMIT,
            ex(
                "poll",
                "GET",
                f"{APP}/status",
                repeat=True,
                text='{"status": "IN_PROG',
                headers={"content-type": "application/json"},
            ),
        ],
    ),
    "poll_html": (
        "a proxy's HTML page with status 200",
        [
            SUBMIT,
            ex(
                "poll",
                "GET",
                f"{APP}/status",
                repeat=True,
                text="<!doctype html><html><body><h1>Service temporarily unavailable</h1></body></html>",
                headers={"content-type": "text/html"},
            ),
        ],
    ),
    "poll_transient": (
        "the status endpoint keeps answering 503",
        [SUBMIT, error(503, "Service Unavailable", "poll", f"{APP}/status", "GET", repeat=True)],
    ),
    "submit_unauthorized": (
        "401 echoing the key (providers do this)",
        [error(401, f"Invalid key: {FAKE_KEY}", repeat=True)],
    ),
    "submit_payment_required": ("402, balance exhausted", [error(402, "Exhausted balance", repeat=True)]),
    "submit_rejected": (
        "422, the input field is missing",
        [error(422, [{"loc": ["body", "video_url"], "msg": "field required", "type": "missing"}], repeat=True)],
    ),
    "submit_transient": (
        "503, 500, then accepted",
        [error(503, "Service Unavailable"), error(500, "Internal Server Error"), SUBMIT],
    ),
    "submit_rate_limited": (
        "429 with Retry-After 7, then accepted",
        [error(429, "Too many requests", headers={"retry-after": "7"}), SUBMIT],
    ),
    "cancel_accepted": (
        "cancel while queued",
        [SUBMIT, ex("cancel", "PUT", f"{APP}/cancel", 202, json={"status": "CANCELLATION_REQUESTED"})],
    ),
    "cancel_already_terminal": (
        "cancel after completion",
        [
            SUBMIT,
            status("COMPLETED", repeat=True),
            result(),
            ex("cancel", "PUT", f"{APP}/cancel", 400, json={"status": "ALREADY_COMPLETED"}),
        ],
    ),
    "download_expired_url": (
        "the signed CDN URL expired; the result has a fresh one",
        [
            SUBMIT,
            *SUCCESS_POLLS,
            result(f"{CDN}?token=old", repeat=False),
            result(f"{CDN}?token=fresh"),
            ex(
                "download",
                "GET",
                f"{CDN}?token=old",
                403,
                text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                headers={"content-type": "application/xml"},
            ),
            download(f"{CDN}?token=fresh"),
        ],
    ),
    "download_truncated": (
        "the CDN drops the connection mid-file",
        [SUBMIT, *SUCCESS_POLLS, result(), download(repeat=True, headers={"content-length": "999999"})],
    ),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "result.webm").write_bytes(tiny_webm())
    for name, (description, exchanges) in SCENARIOS.items():
        data = {"description": description, "source": "transcribed", "exchanges": exchanges}
        (OUT / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(SCENARIOS)} scenarios to {OUT}")


if __name__ == "__main__":
    main()

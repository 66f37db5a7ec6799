"""Contract scenarios for ``aigateway``, adapted from the recordings its plugin ships.

``vidmatte_aigateway.testing`` replays whole recorded sessions in its own format
(raw bodies, no roles).  Until it publishes a ``contract_subject()``, this
adapter maps those recordings onto the suite's situations: roles come from the
URL, and the last answer of each (method, URL) repeats ("the provider keeps
saying the last thing it said").  A few situations the recorder has no session
for are derived from recorded exchanges (each says so in its description).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from vidmatte.contracts import BackendSubject, Exchange, Scenario, ScenarioSet

Recording = Mapping[str, Any]


def _role(method: str, url: str) -> str:
    if "media." in url:
        return "download"
    if method == "POST" and url.endswith("/v1/videos/generations"):
        return "submit"
    if method == "DELETE" or url.endswith("/cancel"):
        return "cancel"
    if "/signed" in url:
        return "result"
    if method == "GET" and "/v1/jobs/" in url:
        return "poll"
    return "other"


def _exchange(item: Mapping[str, Any]) -> Exchange:
    request, response = item["request"], item["response"]
    body = (
        base64.b64decode(response["body_base64"])
        if "body_base64" in response
        else str(response.get("body") or "").encode()
    )
    return Exchange(
        role=_role(request["method"], request["url"]),
        method=request["method"],
        url=request["url"],
        status=int(response["status"]),
        headers={k.lower(): v for k, v in dict(response.get("headers", {})).items()},
        body=body,
    )


def _repeat_last(exchanges: list[Exchange]) -> tuple[Exchange, ...]:
    """Mark the last exchange of each (method, URL) as repeating."""
    last: dict[tuple[str, str], int] = {}
    for index, exchange in enumerate(exchanges):
        last[(exchange.method, exchange.url)] = index
    return tuple(attrs.evolve(e, repeat=True) if last[(e.method, e.url)] == i else e for i, e in enumerate(exchanges))


def _scenario(name: str, description: str, exchanges: list[Exchange]) -> Scenario:
    return Scenario(name=name, exchanges=_repeat_last(exchanges), description=description)


def _with_status(exchange: Exchange, status: str) -> Exchange:
    body = json.loads(exchange.body)
    body["status"] = status
    return attrs.evolve(exchange, body=json.dumps(body).encode())


def _convert(load: Callable[[str], Recording]) -> ScenarioSet:
    def rec(name: str) -> list[Exchange]:
        return [_exchange(item) for item in load(name)["exchanges"] if "response" in item]

    happy = rec("happy_processing_result_url")
    submit = next(e for e in happy if e.role == "submit")
    polls = [e for e in happy if e.role == "poll"]
    completed = polls[-1]
    derived = "derived from recorded exchanges: "
    rate = rec("rate_limited_429_then_ok")
    five = rec("server_error_5xx_then_ok")
    html_body = next(e for e in rec("html_proxy_page")).body
    truncated = [
        e for e in rec("truncated_download") if not (e.role == "download" and "content-length" not in e.headers)
    ]
    scenarios = [
        _scenario("job_succeeds", "happy_processing_result_url", happy),
        _scenario("job_fails", "job_failed_error_object", rec("job_failed_error_object")),
        _scenario("submit_unauthorized", "auth_401", rec("auth_401")),
        _scenario("submit_payment_required", "payment_402", rec("payment_402")),
        _scenario("submit_rejected", "input_field_mismatch_400", rec("input_field_mismatch_400")),
        _scenario(
            "submit_transient", "server_error_5xx_then_ok (submit part)", [e for e in five if e.role == "submit"]
        ),
        _scenario(
            "submit_rate_limited", "rate_limited_429_then_ok (submit part)", [e for e in rate if e.role == "submit"][1:]
        ),
        _scenario(
            "poll_rate_limited",
            derived + "rate_limited_429_then_ok's polls, Retry-After raised from 1 s to 30 s (above the 3 s minimum)",
            [
                attrs.evolve(e, headers={**e.headers, "retry-after": "30"}) if e.status == 429 else e
                for e in rate
                if e.role != "submit"
            ]
            + [submit],
        ),
        _scenario("poll_malformed", "malformed_json", rec("malformed_json")),
        _scenario(
            "poll_not_found",
            derived + "happy's submit, then not_found_404 (its 404 moved to the submitted job's URL)",
            [submit, *(attrs.evolve(e, url=polls[0].url) for e in rec("not_found_404"))],
        ),
        _scenario("cancel_accepted", "cancel_delete", rec("cancel_delete")),
        _scenario("cancel_already_terminal", "cancel_already_terminal", rec("cancel_already_terminal")),
        _scenario("download_expired_url", "expired_url", rec("expired_url")),
        _scenario("download_truncated", "truncated_download (the short answer, repeating)", truncated),
        _scenario(
            "job_flaps",
            derived + "happy's polls, then 'processing' after 'completed'",
            [*happy, _with_status(completed, "processing")],
        ),
        _scenario(
            "poll_unknown_status",
            derived + "a recorded poll with status 'warming_up'",
            [submit, _with_status(polls[0], "warming_up")],
        ),
        _scenario(
            "poll_transient",
            derived + "server_error_5xx_then_ok's 503 poll, repeating",
            [submit, next(e for e in five if e.role == "poll" and e.status == 503)],
        ),
        _scenario(
            "poll_html",
            derived + "html_proxy_page's HTML body answered with 200 on a poll",
            [submit, attrs.evolve(polls[0], body=html_body, headers={"content-type": "text/html"})],
        ),
    ]
    return ScenarioSet({s.name: s for s in scenarios})


def aigateway_subject() -> BackendSubject:
    """The aigateway backend with adapted scenarios and the replay key."""
    from vidmatte_aigateway import testing
    from vidmatte_aigateway._settings import API_KEY_ENV
    from vidmatte_aigateway.plugin import vidmatte_register_backends

    def load(name: str) -> Recording:
        path = testing.SCENARIO_DIR / f"{name}.json"
        data: Recording = json.loads(path.read_text(encoding="utf-8"))
        return data

    (spec,) = vidmatte_register_backends()
    return BackendSubject(
        spec=spec,
        scenarios=_convert(load),
        env={API_KEY_ENV: testing.REPLAY_KEY},
        secrets=(testing.REPLAY_KEY,),
        idempotency_header="Idempotency-Key",
    )

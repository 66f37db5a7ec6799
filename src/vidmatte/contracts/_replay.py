"""Replaying a scenario to a backend through an injected transport (no global patching)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import httpx
import respx

from vidmatte.contracts._scenarios import Exchange, Scenario

__all__ = ["Call", "Replay"]

UNEXPECTED_STATUS = 418
"""Status answered to a request the scenario does not contain (the suite then fails the test)."""


def _now() -> float:
    """The running loop's clock (virtual under ``run_virtual``), else the monotonic clock."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


@attrs.define
class Call:
    """One request a backend made, with the exchange that answered it."""

    request: httpx.Request
    exchange: Exchange | None
    """``None`` when the scenario held no matching exchange."""
    at: float
    """Loop time the request arrived (virtual seconds under ``run_virtual``)."""

    @property
    def role(self) -> str:
        """The recorded role of the answering exchange (``unexpected`` when none)."""
        return self.exchange.role if self.exchange is not None else "unexpected"

    def strings(self) -> set[str]:
        """Every string value in the JSON response body (to find a raw status verbatim)."""
        found: set[str] = set()
        if self.exchange is None:
            return found
        stack: list[Any] = [self.exchange.json()]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                found.add(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
        return found


class _ChunkedBody(httpx.AsyncByteStream):
    """A response body served in chunks, calling ``on_chunk`` between them (to watch a download)."""

    def __init__(self, body: bytes, chunk_size: int, on_chunk: Callable[[int], None] | None) -> None:
        self._body, self._size, self._on_chunk = body, max(1, chunk_size), on_chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), self._size):
            if self._on_chunk is not None:
                self._on_chunk(start)
            yield self._body[start : start + self._size]
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Nothing to release."""


class Replay:
    """Serves one :class:`Scenario` through a ``respx.Router`` wrapped in ``httpx.MockTransport``.

    Each matching request takes the first unused exchange recorded for its
    method and URL (``repeat`` exchanges stay in play).  Every request is kept
    in :attr:`calls` with its arrival time; one the scenario does not contain
    gets a 418 and is listed in :attr:`unexpected`.
    """

    def __init__(self, scenario: Scenario, *, chunk_size: int = 4096) -> None:
        self.scenario = scenario
        self.calls: list[Call] = []
        self.on_download_chunk: Callable[[int], None] | None = None
        """Called before each chunk of a ``download`` body is served (offset as argument)."""
        self._chunk_size = chunk_size
        self._used: set[int] = set()
        self.router = respx.Router(assert_all_called=False, assert_all_mocked=True)
        self.router.route().mock(side_effect=self._answer)
        self.transport = httpx.MockTransport(self.router.handler)
        """Inject this into the backend (``BackendContext.transport``)."""

    def _answer(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        for index, exchange in enumerate(self.scenario.exchanges):
            if index in self._used or not exchange.matches(request.method, url):
                continue
            if not exchange.repeat:
                self._used.add(index)
            self.calls.append(Call(request, exchange, _now()))
            return self._response(exchange)
        self.calls.append(Call(request, None, _now()))
        body = {"error": {"message": f"replay: {request.method} {url} is not in scenario {self.scenario.name!r}"}}
        return httpx.Response(UNEXPECTED_STATUS, json=body)

    def _response(self, exchange: Exchange) -> httpx.Response:
        headers = dict(exchange.headers)
        if exchange.role == "download":
            headers.setdefault("content-length", str(len(exchange.body)))
            stream = _ChunkedBody(exchange.body, self._chunk_size, self.on_download_chunk)
            return httpx.Response(exchange.status, headers=headers, stream=stream)
        return httpx.Response(exchange.status, headers=headers, content=exchange.body)

    @property
    def unexpected(self) -> list[httpx.Request]:
        """Requests no exchange of the scenario matched."""
        return [call.request for call in self.calls if call.exchange is None]

    def of_role(self, role: str) -> list[Call]:
        """The calls answered by exchanges of ``role``."""
        return [call for call in self.calls if call.role == role]

    def unused(self) -> list[Exchange]:
        """Recorded one-shot exchanges no request has used yet."""
        return [e for i, e in enumerate(self.scenario.exchanges) if i not in self._used and not e.repeat]

    def transcript(self) -> str:
        """The requests so far, one a line, for failure messages (headers left out: they hold keys)."""
        lines = [
            f"  t={call.at:9.3f}s {call.request.method} {call.request.url.copy_with(query=None)} -> "
            + (f"{call.exchange.status} [{call.role}]" if call.exchange else "NOT IN SCENARIO")
            for call in self.calls
        ]
        return f"requests in scenario {self.scenario.name!r}:\n" + ("\n".join(lines) or "  (none)")


def json_of(request: httpx.Request) -> Any:
    """A request's JSON body, or ``None``."""
    try:
        return json.loads(request.content)
    except (ValueError, UnicodeDecodeError, httpx.RequestNotRead):
        return None

"""Recording real exchanges (an emulator's or, with a key, the live service's) as a scenario file."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from vidmatte.errors import redact

__all__ = ["RecordingTransport"]

_DROPPED_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "set-cookie", "proxy-authorization"})


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps a real transport and keeps every exchange, to save as a replay scenario.

    ``role_of`` names what each request is for (``submit``, ``poll`` ...).
    Credentials never reach the file: auth headers are dropped and ``secrets``
    are redacted from URLs and bodies.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        role_of: Callable[[httpx.Request], str],
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._inner = inner
        self._role_of = role_of
        self._secrets = secrets
        self.exchanges: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward ``request``, read the whole answer, keep both."""
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        self.exchanges.append(self._record(request, response.status_code, response.headers, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    def _record(self, request: httpx.Request, status: int, headers: httpx.Headers, body: bytes) -> dict[str, Any]:
        kept = {k: redact(v, *self._secrets) for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}
        kept.pop("content-encoding", None)  # the body is stored decoded
        kept.pop("content-length", None)
        response: dict[str, Any] = {"status": status, "headers": kept}
        try:
            response["json"] = json.loads(redact(body.decode(), *self._secrets))
        except (UnicodeDecodeError, ValueError):
            try:
                response["text"] = redact(body.decode(), *self._secrets)
            except UnicodeDecodeError:
                response["base64"] = base64.b64encode(body).decode()
        return {
            "role": self._role_of(request),
            "request": {"method": request.method, "url": redact(str(request.url), *self._secrets)},
            "response": response,
        }

    def save(self, path: str | Path, *, description: str = "", repeat_last: bool = True) -> Path:
        """Write the exchanges as a scenario file; ``repeat_last`` marks each URL's last answer repeating."""
        exchanges = [dict(e) for e in self.exchanges]
        if repeat_last:
            last = {(e["request"]["method"], e["request"]["url"]): i for i, e in enumerate(exchanges)}
            for index in last.values():
                exchanges[index]["repeat"] = True
        path = Path(path)
        data = {"description": description, "source": "recorded", "exchanges": exchanges}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()

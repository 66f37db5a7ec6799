"""Replay scenarios: recorded HTTP exchanges kept as JSON data files.

A scenario file (``NAME.json``) holds one contract situation, for example a
job that succeeds or a submit answered with 401::

    {
      "description": "submit, two polls, result, download",
      "exchanges": [
        {"role": "submit",
         "request": {"method": "POST", "url": "https://queue.example/v1/model"},
         "response": {"status": 200, "json": {"request_id": "r-1"}}},
        {"role": "poll", "repeat": true,
         "request": {"method": "GET", "url": "https://queue.example/v1/model/requests/r-1/status"},
         "response": {"status": 200, "headers": {"retry-after": "2"}, "json": {"status": "COMPLETED"}}}
      ]
    }

A response body is one of ``json``, ``text``, ``base64`` or ``file`` (a path
relative to the scenario file).  ``repeat: true`` keeps an exchange in play once
it has been used, so a backend may poll it any number of times; otherwise each
exchange answers one request.  ``role`` tells the suite what a request is for
(``submit``, ``poll``, ``result``, ``cancel``, ``download``, ``other``), which
is how timing and idempotency checks stay provider-neutral.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

__all__ = ["ROLES", "Exchange", "Scenario", "ScenarioSet", "load_scenarios"]

ROLES = frozenset({"submit", "poll", "result", "cancel", "download", "other"})
"""What a recorded request is for."""


class ScenarioError(ValueError):
    """A scenario file is not in the documented format (the message names file and field)."""


@attrs.frozen
class Exchange:
    """One recorded request and the response the provider gave."""

    role: str
    method: str
    url: str
    """Scheme, host and path must match; a query given here must be a subset of the request's."""
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    repeat: bool = False
    """Answer any number of matching requests instead of one."""

    def matches(self, method: str, url: str) -> bool:
        """True when a request with ``method`` and ``url`` is the one recorded here."""
        if method.upper() != self.method.upper():
            return False
        want, got = urlsplit(self.url), urlsplit(url)
        if (want.scheme, want.netloc, want.path.rstrip("/")) != (got.scheme, got.netloc, got.path.rstrip("/")):
            return False
        got_query = set(parse_qsl(got.query, keep_blank_values=True))
        return set(parse_qsl(want.query, keep_blank_values=True)) <= got_query

    def json(self) -> Any:
        """The response body as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


@attrs.frozen
class Scenario:
    """A named contract situation: the exchanges a backend will meet, in order."""

    name: str
    exchanges: tuple[Exchange, ...]
    description: str = ""

    def of_role(self, role: str) -> tuple[Exchange, ...]:
        """The exchanges recorded for ``role``."""
        return tuple(e for e in self.exchanges if e.role == role)


@attrs.frozen
class ScenarioSet:
    """A plugin's scenarios by name (usually one directory of JSON files)."""

    scenarios: Mapping[str, Scenario] = attrs.field(factory=dict)

    def get(self, name: str) -> Scenario | None:
        """The scenario called ``name``, or ``None``."""
        return self.scenarios.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.scenarios

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.scenarios))


def _body(response: Mapping[str, Any], where: str, folder: Path) -> tuple[bytes, dict[str, str]]:
    """The body bytes of a recorded response and any content type it implies."""
    given = [k for k in ("json", "text", "base64", "file") if k in response]
    if len(given) > 1:
        raise ScenarioError(f"{where}: give at most one of json, text, base64, file (got {', '.join(given)})")
    if not given:
        return b"", {}
    kind = given[0]
    value = response[kind]
    if kind == "json":
        return json.dumps(value).encode(), {"content-type": "application/json"}
    if kind == "text":
        return str(value).encode(), {}
    if kind == "base64":
        return base64.b64decode(value), {}
    path = folder / str(value)
    try:
        return path.read_bytes(), {}
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read body file {str(path)!r}: {exc.strerror}") from None


def parse_scenario(name: str, data: Mapping[str, Any], *, folder: Path = Path(".")) -> Scenario:
    """A :class:`Scenario` from its JSON form (``folder`` resolves ``file`` bodies)."""
    exchanges = []
    raw = data.get("exchanges")
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"scenario {name!r}: 'exchanges' must be a non-empty list")
    for index, item in enumerate(raw):
        where = f"scenario {name!r} exchange {index}"
        try:
            request, response = item["request"], item["response"]
            role = str(item.get("role", "other"))
            method, url = str(request["method"]), str(request["url"])
        except (KeyError, TypeError):
            raise ScenarioError(f"{where}: needs request.method, request.url and response") from None
        if role not in ROLES:
            raise ScenarioError(f"{where}: role {role!r} is not one of {', '.join(sorted(ROLES))}")
        body, implied = _body(response, where, folder)
        headers = {**implied, **{str(k).lower(): str(v) for k, v in dict(response.get("headers", {})).items()}}
        exchanges.append(
            Exchange(
                role=role,
                method=method.upper(),
                url=url,
                status=int(response.get("status", 200)),
                headers=headers,
                body=body,
                repeat=bool(item.get("repeat", False)),
            )
        )
    return Scenario(name=name, exchanges=tuple(exchanges), description=str(data.get("description", "")))


def load_scenarios(folder: str | Path) -> ScenarioSet:
    """Every ``*.json`` scenario in ``folder``, named by file stem."""
    folder = Path(folder)
    scenarios = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ScenarioError(f"{path}: not JSON ({exc})") from None
        scenarios[path.stem] = parse_scenario(path.stem, data, folder=folder)
    if not scenarios:
        raise ScenarioError(f"no *.json scenarios in {str(folder)!r}")
    return ScenarioSet(scenarios)

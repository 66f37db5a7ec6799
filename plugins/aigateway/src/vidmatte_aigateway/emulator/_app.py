"""The emulator's HTTP side: AIgateway's documented protocol on an aiohttp server."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable

from aiohttp import web

from vidmatte_aigateway.emulator._config import Fault
from vidmatte_aigateway.emulator._jobs import Bucket, account_for
from vidmatte_aigateway.emulator._routes import DROPPED, FAULT, KEY, ROUTE, Routes, bearer, error_response

__all__ = ["Emulator"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_API_ROUTES = {"submit", "poll", "cancel", "download", "signed", "models", "schema"}
_PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


class Emulator(Routes):
    """An AIgateway emulator: start it, point the backend's ``base_url`` at :attr:`base_url`.

    Every documented variant is a switch in :class:`EmulatorConfig`; faults are
    queued with :meth:`inject`; counters are in :meth:`stats` (and
    ``GET /_emulator/stats``).  Use :func:`vidmatte_aigateway.emulator.run_emulator`
    in async tests or :func:`~vidmatte_aigateway.emulator.emulator_thread` in sync ones.
    """

    def app(self) -> web.Application:
        """The aiohttp application (routes of the gateway, the media host and the test hooks)."""
        app = web.Application(client_max_size=self.config.max_upload_bytes)
        r = app.router
        r.add_post("/v1/videos/generations", self._wrap("submit", self._submit))
        r.add_get("/v1/jobs/{job}", self._wrap("poll", self._poll))
        r.add_delete("/v1/jobs/{job}", self._wrap("cancel", self._cancel_delete))
        r.add_post("/v1/jobs/{job}/cancel", self._wrap("cancel", self._cancel_post))
        r.add_get("/v1/files/jobs/{job}/{file}/signed", self._wrap("signed", self._signed))
        r.add_get("/v1/files/jobs/{job}/{file}", self._wrap("download", self._download))
        r.add_get("/v1/models/{owner}/{name}/schema", self._wrap("schema", self._schema))
        r.add_get("/v1/models/{owner}/{name}", self._wrap("models", self._model))
        r.add_post("/_emulator/uploads", self._wrap("upload", self._upload))
        r.add_get("/_emulator/uploads/{id}/{name}", self._wrap("fetch", self._fetch))
        r.add_get("/_emulator/stats", self._stats)
        r.add_post("/_emulator/config", self._config)
        r.add_post("/_emulator/faults", self._faults)
        r.add_post("/_emulator/reset", self._reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 for an ephemeral port) and return the base URL."""
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError("the emulator listens on loopback only")
        self._workdir = tempfile.TemporaryDirectory(prefix="aigateway-emulator-")
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{host}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving, end jobs in flight and delete the work files."""
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        for task in self._background:
            task.cancel()
        tasks = [job.task for job in self.jobs.values() if job.task is not None] + list(self._background)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._local is not None:
            await self._local.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        if self._workdir is not None:
            self._workdir.cleanup()

    # -- the request pipeline: count, delay, faults, auth, rate limit ---------------------

    def _take_fault(self, route: str) -> Fault | None:
        for fault in self.faults:
            applies = fault.route == route or (fault.route == "*" and route in _API_ROUTES)
            if applies and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                self.counters.faults[fault.kind] += 1
                return fault
        return None

    def _wrap(self, route: str, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.counters.requests[route] += 1
            request[ROUTE] = route
            response = await self._pipeline(route, handler, request)
            self.counters.statuses[str(response.status) if not request.get(DROPPED) else "dropped"] += 1
            return response

        return wrapped

    async def _pipeline(self, route: str, handler: Handler, request: web.Request) -> web.StreamResponse:
        if self.config.latency and route in _API_ROUTES:
            await asyncio.sleep(self.config.latency)
        fault = self._take_fault(route)
        while fault is not None and fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            fault = self._take_fault(route)
        if fault is not None:
            request[FAULT] = fault
        limit_headers: dict[str, str] = {}
        if route in _API_ROUTES and not self._signed_download(request):
            key = bearer(request)
            account = account_for(self.config, key)
            if account is None or key is None:
                return error_response(
                    401, "Invalid API key provided.", type_="authentication_error", code="invalid_key"
                )
            request[KEY] = key
            bucket = self._buckets.setdefault(key, Bucket(account.requests_per_minute))
            allowed, limit_headers, wait = bucket.take(asyncio.get_running_loop().time())
            if not allowed:
                self.counters.rate_limited += 1
                response = error_response(
                    429, "Rate limit exceeded.", type_="rate_limit_error", code="rate_limit_exceeded"
                )
                response.headers.update(limit_headers)
                response.headers["Retry-After"] = str(wait)
                return response
        if fault is not None:
            injected = self._fault_response(fault)
            if injected is not None:
                injected.headers.update(limit_headers)
                return injected
        answer = await handler(request)
        if not answer.prepared:
            answer.headers.update(limit_headers)
        if fault is not None and fault.kind == "drop":
            request[DROPPED] = True
            # The work is done (a job may exist now) but the answer is lost on the way.
            if request.transport is not None:
                request.transport.abort()
        return answer

    def _fault_response(self, fault: Fault) -> web.Response | None:
        if fault.kind == "429":
            self.counters.rate_limited += 1
            response = error_response(429, "Rate limit exceeded.", type_="rate_limit_error", code="rate_limit_exceeded")
            response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if fault.kind == "5xx":
            status = fault.status or 500
            message = "The model is saturated." if status == 503 else "Upstream provider failure."
            return error_response(status, message, type_="api_error", code="upstream_error")
        if fault.kind == "html":
            return web.Response(status=fault.status or 502, text=_PROXY_PAGE, content_type="text/html")
        if fault.kind == "malformed":
            return web.Response(status=200, text='{"id": "job_', content_type="application/json")
        return None  # drop, truncate, expire, fail: applied inside the handlers

    def _signed_download(self, request: web.Request) -> bool:
        return request.get(ROUTE) == "download" and "signature" in request.query

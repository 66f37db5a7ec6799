"""The emulator's HTTP side: AIgateway's documented protocol on an aiohttp server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import random
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from vidmatte import MattingBackend
from vidmatte_aigateway.emulator._config import EmulatorConfig, Fault
from vidmatte_aigateway.emulator._jobs import Bucket, Job, Stats, account_for, new_job_id, sign_path
from vidmatte_aigateway.emulator._media import (
    local_backend,
    local_engine_available,
    matte_local,
    matte_synthetic,
    probe_duration,
)
from vidmatte_aigateway.webhooks import sign_webhook

__all__ = ["Emulator"]

_log = logging.getLogger("vidmatte.aigateway.emulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")

# Per-request notes the pipeline leaves for the handlers.
_ROUTE = web.RequestKey("aigateway_route", str)
_FAULT = web.RequestKey("aigateway_fault", Fault)
_KEY = web.RequestKey("aigateway_key", str)
_DROPPED = web.RequestKey("aigateway_dropped", bool)

_API_ROUTES = {"submit", "poll", "cancel", "download", "signed", "models", "schema"}
_OUTPUT_NAME = "output.webm"
_PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


def _error(status: int, message: str, *, type_: str, code: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return web.json_response(body, status=status)


class Emulator:
    """An AIgateway emulator: start it, point the backend's ``base_url`` at :attr:`base_url`.

    Every documented variant is a switch in :class:`EmulatorConfig`; faults are
    queued with :meth:`inject`; counters are in :meth:`stats` (and
    ``GET /_emulator/stats``).  Use :func:`vidmatte_aigateway.emulator.run_emulator`
    in async tests or :func:`~vidmatte_aigateway.emulator.emulator_thread` in sync ones.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.config.check()
        self.faults: list[Fault] = []
        self.jobs: dict[str, Job] = {}
        self.counters = Stats()
        self._idempotency: dict[tuple[str, str], tuple[str, str]] = {}
        """(key, Idempotency-Key) -> (job id, fingerprint of the body that created it)."""
        self._buckets: dict[str, Bucket] = {}
        self._uploads: dict[str, Path] = {}
        self._secret = secrets.token_bytes(16)
        self._rng = random.Random(self.config.seed)
        self._engine_lock = asyncio.Semaphore(2)
        # Media work runs here, so stop() can wait for it before deleting the work folder.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="aigateway-emulator")
        self._local: MattingBackend | None = None
        self._local_available: bool | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.base_url = ""

    # -- control -----------------------------------------------------------------------

    def inject(self, kind: str, *, route: str = "*", count: int = 1, **options: Any) -> Fault:
        """Queue a fault hitting the next ``count`` requests of ``route`` (see ``FAULT_KINDS``)."""
        fault = Fault(kind, route, count, **options)
        self.faults.append(fault)
        return fault

    def configure(self, **changes: Any) -> None:
        """Change switches of :class:`EmulatorConfig` (checked)."""
        self.config.update(changes)

    def stats(self) -> dict[str, Any]:
        """Counters: submissions, charges, requests by route, answers by status, faults applied."""
        return self.counters.as_dict(self.jobs)

    def reset(self) -> None:
        """Forget counters, faults, rate budgets and idempotency keys (jobs stay)."""
        self.counters = Stats()
        self.faults.clear()
        self._buckets.clear()
        self._idempotency.clear()

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

    @property
    def workdir(self) -> Path:
        """Where uploads and outputs live while the emulator runs."""
        assert self._workdir is not None, "the emulator is not started"
        return Path(self._workdir.name)

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
            request[_ROUTE] = route
            response = await self._pipeline(route, handler, request)
            self.counters.statuses[str(response.status) if not request.get(_DROPPED) else "dropped"] += 1
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
            request[_FAULT] = fault
        limit_headers: dict[str, str] = {}
        if route in _API_ROUTES and not self._signed_download(request):
            key = _bearer(request)
            account = account_for(self.config, key)
            if account is None or key is None:
                return _error(401, "Invalid API key provided.", type_="authentication_error", code="invalid_key")
            request[_KEY] = key
            bucket = self._buckets.setdefault(key, Bucket(account.requests_per_minute))
            allowed, limit_headers, wait = bucket.take(asyncio.get_running_loop().time())
            if not allowed:
                self.counters.rate_limited += 1
                response = _error(429, "Rate limit exceeded.", type_="rate_limit_error", code="rate_limit_exceeded")
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
            request[_DROPPED] = True
            # The work is done (a job may exist now) but the answer is lost on the way.
            if request.transport is not None:
                request.transport.abort()
        return answer

    def _fault_response(self, fault: Fault) -> web.Response | None:
        if fault.kind == "429":
            self.counters.rate_limited += 1
            response = _error(429, "Rate limit exceeded.", type_="rate_limit_error", code="rate_limit_exceeded")
            response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if fault.kind == "5xx":
            status = fault.status or 500
            message = "The model is saturated." if status == 503 else "Upstream provider failure."
            return _error(status, message, type_="api_error", code="upstream_error")
        if fault.kind == "html":
            return web.Response(status=fault.status or 502, text=_PROXY_PAGE, content_type="text/html")
        if fault.kind == "malformed":
            return web.Response(status=200, text='{"id": "job_', content_type="application/json")
        return None  # drop, truncate, expire, fail: applied inside the handlers

    def _signed_download(self, request: web.Request) -> bool:
        return request.get(_ROUTE) == "download" and "signature" in request.query

    # -- gateway routes ----------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        key = request[_KEY]
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Body is not valid JSON.", type_="invalid_request_error", code="invalid_json")
        if not isinstance(body, dict):
            return _error(400, "Body must be an object.", type_="invalid_request_error", code="invalid_json")
        idempotency_key = request.headers.get("Idempotency-Key")
        fingerprint = json.dumps(body, sort_keys=True)
        if idempotency_key and (key, idempotency_key) in self._idempotency:
            job_id, first = self._idempotency[(key, idempotency_key)]
            if first != fingerprint and self.config.strict_idempotency:
                # GUESS: undocumented; what idempotent APIs commonly answer.
                return _error(
                    422,
                    "Idempotency-Key reused with a different request.",
                    type_="invalid_request_error",
                    code="idempotency_key_reused",
                )
            self.counters.idempotent_replays += 1
            return web.json_response(self._record(self.jobs[job_id], request), status=202)
        if body.get("model") != self.config.model:
            return _error(
                404,
                f"Model {body.get('model')!r} not found.",
                type_="invalid_request_error",
                code="model_not_found",
                param="model",
            )
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return _error(
                400,
                "Missing required field 'prompt'.",
                type_="invalid_request_error",
                code="missing_field",
                param="prompt",
            )
        field = self.config.input_field
        input_url = body.get(field)
        if not isinstance(input_url, str) or urlsplit(input_url).scheme not in {"http", "https"}:
            return _error(
                400,
                f"Missing or invalid field {field!r}.",
                type_="invalid_request_error",
                code="missing_field",
                param=field,
            )
        tag = request.headers.get("x-aig-tag")
        if tag is not None and len(tag) > 64:
            return _error(
                400, "x-aig-tag is longer than 64 characters.", type_="invalid_request_error", code="invalid_tag"
            )
        account = self.config.accounts[key]
        if account.credits is not None and account.credits <= 0:
            return _error(402, "Insufficient credits.", type_="insufficient_credits", code="insufficient_credits")
        loop = asyncio.get_running_loop()
        webhook = body.get("webhook_url")
        job = Job(
            id=new_job_id(),
            key=key,
            model=self.config.model,
            input_url=input_url,
            created_at=time.time(),
            created_mono=loop.time(),
            webhook_url=webhook if isinstance(webhook, str) else None,
        )
        fault = request.get(_FAULT)
        job.must_fail = fault is not None and fault.kind == "fail"
        self.jobs[job.id] = job
        if idempotency_key:
            self._idempotency[(key, idempotency_key)] = (job.id, fingerprint)
        self.counters.submissions += 1
        job.task = loop.create_task(self._process(job, _origin_of(request)))
        return web.json_response(self._record(job, request), status=202)

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job"])
        if job is None or job.key != request[_KEY]:
            return _error(404, "Job not found.", type_="invalid_request_error", code="job_not_found")
        now = asyncio.get_running_loop().time()
        interval = self.config.min_poll_interval
        if interval > 0 and job.last_poll is not None and now - job.last_poll < interval:
            self.counters.not_modified += 1
            return web.Response(status=304)
        job.last_poll = now
        response = web.json_response(self._record(job, request))
        if job.status == "completed" and job.charged is not None and self.config.cost_report in {"header", "both"}:
            response.headers["X-Cost-Cents"] = _cents(job.charged)
        return response

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job"])
        if job is None or job.key != request[_KEY]:
            return _error(404, "Job not found.", type_="invalid_request_error", code="job_not_found")
        if not job.terminal:
            # GUESS: the docs say "cancel a queued job"; a running one is cancelled too, uncharged.
            job.status = "cancelled"
            if job.task is not None:
                job.task.cancel()
            self._deliver_webhook(job, _origin_of(request))
        return web.json_response(self._record(job, request))

    async def _cancel_delete(self, request: web.Request) -> web.StreamResponse:
        if self.config.cancel_form == "post":
            return _error(405, "Method not allowed.", type_="invalid_request_error", code="method_not_allowed")
        return await self._cancel(request)

    async def _cancel_post(self, request: web.Request) -> web.StreamResponse:
        if self.config.cancel_form == "delete":
            return _error(404, "Not found.", type_="invalid_request_error", code="not_found")
        return await self._cancel(request)

    def _completed_job(self, request: web.Request) -> Job | None:
        job = self.jobs.get(request.match_info["job"])
        if job is None or job.status != "completed" or job.output is None:
            return None
        if request.match_info["file"] != _OUTPUT_NAME:
            return None
        return job

    async def _download(self, request: web.Request) -> web.StreamResponse:
        job = self._completed_job(request)
        if job is None:
            return _error(404, "File not found.", type_="invalid_request_error", code="file_not_found")
        fault = request.get(_FAULT)
        if "signature" in request.query:
            expires = request.query.get("expires", "")
            good = sign_path(self._secret, request.path, expires)
            if not secrets.compare_digest(good, request.query["signature"]):
                return _error(403, "Invalid signature.", type_="authentication_error", code="invalid_signature")
            if (fault is not None and fault.kind == "expire") or float(expires or 0) < time.time():
                return _error(403, "Signed URL expired.", type_="authentication_error", code="url_expired")
        elif job.key != request.get(_KEY):
            return _error(404, "File not found.", type_="invalid_request_error", code="file_not_found")
        assert job.output is not None
        data = job.output.read_bytes()
        if fault is not None and fault.kind == "truncate":
            response = web.StreamResponse(headers={"Content-Type": "video/webm", "Content-Length": str(len(data))})
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            request[_DROPPED] = True
            if request.transport is not None:
                request.transport.abort()
            return response
        return web.Response(body=data, content_type="video/webm")

    async def _signed(self, request: web.Request) -> web.StreamResponse:
        job = self._completed_job(request)
        if job is None or job.key != request[_KEY]:
            return _error(404, "File not found.", type_="invalid_request_error", code="file_not_found")
        try:
            ttl = float(request.query.get("expires_in", "3600"))
        except ValueError:
            return _error(400, "expires_in must be a number.", type_="invalid_request_error", code="invalid_param")
        url, expires = self._sign(job, _origin_of(request), ttl)
        return web.json_response({"url": url, "expires_at": expires})

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        if model != self.config.model:
            return _error(404, "Model not found.", type_="invalid_request_error", code="model_not_found")
        return web.json_response(
            {
                "id": model,
                "object": "model",
                "type": "video",
                "pricing": {"per_second": str(self.config.price_per_second)},
            }
        )

    async def _schema(self, request: web.Request) -> web.StreamResponse:
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        if model != self.config.model:
            return _error(404, "Model not found.", type_="invalid_request_error", code="model_not_found")
        # GUESS: the real schema's shape is undocumented; JSON Schema under "input".
        field = self.config.input_field
        return web.json_response(
            {
                "id": model,
                "input": {
                    "type": "object",
                    "properties": {
                        "prompt": {"type": "string"},
                        field: {"type": "string", "format": "uri", "description": "The video to process."},
                        "webhook_url": {"type": "string", "format": "uri"},
                    },
                    "required": ["prompt", field],
                },
            }
        )

    # -- uploads (compatible with vidmatte's built-in ``http`` uploader) ---------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name != "file":
                continue
            upload_id = secrets.token_hex(8)
            name = Path(part.filename or "upload.bin").name or "upload.bin"
            folder = self.workdir / "uploads" / upload_id
            folder.mkdir(parents=True)
            path = folder / name
            with path.open("wb") as out:
                while chunk := await part.read_chunk(1 << 16):
                    out.write(chunk)
            self._uploads[upload_id] = path
            return web.json_response({"url": f"{_origin_of(request)}/_emulator/uploads/{upload_id}/{name}"})
        return web.json_response({"error": {"message": "no 'file' field"}}, status=400)

    async def _fetch(self, request: web.Request) -> web.StreamResponse:
        path = self._uploads.get(request.match_info["id"])
        if path is None or path.name != request.match_info["name"]:
            return web.json_response({"error": {"message": "not found"}}, status=404)
        return web.FileResponse(path)

    # -- test hooks ----------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())

    async def _config(self, request: web.Request) -> web.StreamResponse:
        try:
            self.configure(**await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        return web.json_response({"ok": True})

    async def _faults(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            for spec in body if isinstance(body, list) else [body]:
                self.inject(**spec)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        return web.json_response({"ok": True, "queued": len(self.faults)})

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})

    # -- jobs ------------------------------------------------------------------------------

    def _sign(self, job: Job, origin: str, ttl: float) -> tuple[str, float]:
        path = f"/v1/files/jobs/{job.id}/{_OUTPUT_NAME}"
        expires = round(time.time() + ttl, 3)
        signature = sign_path(self._secret, path, str(expires))
        return f"{origin}{path}?expires={expires}&signature={signature}", expires

    def _record(self, job: Job, request: web.Request) -> dict[str, Any]:
        """The job as the gateway renders it, in the configured variant."""
        config = self.config
        status = job.visible_status(asyncio.get_running_loop().time())
        record: dict[str, Any] = {
            "id": job.id,
            "object": "job",
            "model": job.model,
            "status": config.running_state if status == "running" else status,
            "created_at": int(job.created_at),
        }
        if status == "completed":
            url, _ = self._sign(job, _origin_of(request), config.url_ttl)
            details = {"duration": job.duration, "resolution": job.resolution}
            if config.result_field == "result.url":
                record["result"] = {"url": url, **details}
            elif config.result_field == "result.file_url":
                record["result"] = {"file_url": url, **details}
            else:
                record["result_url"] = url  # the SDK's shape: no duration beside it
            if job.charged is not None and config.cost_report in {"usage", "both"}:
                record["usage"] = {"cost_cents": float(_cents(job.charged))}
        elif status == "failed":
            code, message = job.error_code or "job_failed", job.error_message or "The job failed."
            record["error"] = {"code": code, "message": message} if config.error_shape == "object" else message
        return record

    def _timing(self, job: Job, duration: float) -> None:
        config = self.config
        noise = 1.0 + self._rng.uniform(-config.noise, config.noise)
        job.queued_until = job.created_mono + config.queue_seconds * config.speed_factor
        job.done_at = job.queued_until + duration * config.seconds_per_video_second * config.speed_factor * noise

    async def _process(self, job: Job, origin: str) -> None:
        folder = self.workdir / "jobs" / job.id
        folder.mkdir(parents=True)
        loop = asyncio.get_running_loop()
        try:
            source = await self._fetch_input(job.input_url, folder, origin)
            duration = await self._in_thread(probe_duration, source)
            job.duration = round(duration, 3)
            self._timing(job, duration)
            if job.must_fail:
                raise _JobFailure("upstream_error", "The upstream model failed to process the video.")
            output = folder / _OUTPUT_NAME
            async with self._engine_lock:
                await self._matte(source, output)
            job.resolution = await self._in_thread(_resolution, output)
            assert job.done_at is not None
            await asyncio.sleep(max(0.0, job.done_at - loop.time()))
            if job.terminal:
                return
            job.output = output
            charge = Decimal(str(job.duration)) * self.config.price_per_second
            account = self.config.accounts.get(job.key)
            if account is not None and account.credits is not None:
                account.credits -= charge
            job.charged = charge
            job.status = "completed"
            self.counters.charges += 1
            self.counters.charged_usd += charge
        except asyncio.CancelledError:
            return
        except _JobFailure as exc:
            await self._fail(job, exc.code, exc.message)
        except ValueError as exc:
            await self._fail(job, "invalid_input", f"Could not read the input video: {exc}")
        except Exception as exc:  # noqa: BLE001 - any engine failure is the job's failure, never the server's
            _log.warning("emulator job %s failed: %s", job.id, exc)
            await self._fail(job, "upstream_error", f"Processing failed: {type(exc).__name__}")
        self._deliver_webhook(job, origin)

    async def _fail(self, job: Job, code: str, message: str) -> None:
        if job.done_at is not None:
            await asyncio.sleep(max(0.0, job.done_at - asyncio.get_running_loop().time()))
        if not job.terminal:
            job.status, job.error_code, job.error_message = "failed", code, message

    async def _matte(self, source: Path, output: Path) -> None:
        engine = self.config.engine
        if engine == "auto" and self._local_available is None:
            self._local_available = await self._in_thread(local_engine_available)
        if engine == "local" or (engine == "auto" and self._local_available):
            if self._local is None:
                self._local = local_backend(self.workdir / "local")
            await matte_local(self._local, source, output)
        else:
            await self._in_thread(matte_synthetic, source, output)

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _fetch_input(self, url: str, folder: Path, origin: str) -> Path:
        parts = urlsplit(url)
        if url.startswith(origin + "/_emulator/uploads/"):
            upload_id = parts.path.split("/")[3]
            path = self._uploads.get(upload_id)
            if path is None:
                raise _JobFailure("input_unreachable", "The input URL answered 404.")
            return path
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        dest = folder / "input.bin"
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise _JobFailure("input_unreachable", f"The input URL answered {response.status}.")
                size = 0
                with dest.open("wb") as out:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        size += len(chunk)
                        if size > self.config.max_upload_bytes:
                            raise _JobFailure("payload_too_large", "The input video is too large.")
                        out.write(chunk)
        except aiohttp.ClientError as exc:
            raise _JobFailure(
                "input_unreachable", f"The input URL could not be fetched ({type(exc).__name__})."
            ) from None
        return dest

    def _deliver_webhook(self, job: Job, origin: str) -> None:
        if not job.webhook_url or not job.terminal:
            return
        task = asyncio.get_running_loop().create_task(self._post_webhook(job, origin))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _post_webhook(self, job: Job, origin: str) -> None:
        """POST the finished job record, signed, retried a few times (the gateway retries ~8 over 24 h)."""
        assert job.webhook_url is not None
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        record = self._record_for_webhook(job, origin)
        body = json.dumps(record).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in range(3):
            headers.update(
                sign_webhook(body, self.config.webhook_secret, timestamp=time.time(), scheme=self.config.webhook_scheme)
            )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.post(job.webhook_url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.counters.webhooks_delivered += 1
                        return
            await asyncio.sleep(0.2 * 2**attempt)

    def _record_for_webhook(self, job: Job, origin: str) -> dict[str, Any]:
        status = job.status
        record: dict[str, Any] = {"id": job.id, "object": "job", "model": job.model, "status": status}
        if status == "completed":
            url, _ = self._sign(job, origin, self.config.url_ttl)
            record["result"] = {"url": url, "duration": job.duration, "resolution": job.resolution}
            if job.charged is not None:
                record["usage"] = {"cost_cents": float(_cents(job.charged))}
        elif status == "failed":
            record["error"] = {"code": job.error_code, "message": job.error_message}
        record["event"] = f"job.{status}"
        return record


class _JobFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _cents(amount: Decimal) -> str:
    return format((amount * 100).normalize(), "f")


def _resolution(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return f"{ctx.width}x{ctx.height}"


def _origin_of(request: web.Request) -> str:
    """``http://127.0.0.1:PORT`` as the client reached us (no trailing slash)."""
    return str(request.url.origin()).rstrip("/")

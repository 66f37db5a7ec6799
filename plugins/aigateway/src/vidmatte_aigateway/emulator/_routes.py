"""The emulator's routes: the gateway's documented API, the uploads endpoint and the test hooks."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from vidmatte_aigateway.emulator._config import Fault
from vidmatte_aigateway.emulator._jobs import Job, new_job_id, sign_path
from vidmatte_aigateway.emulator._runner import OUTPUT_NAME, JobRunner, cents, origin_of

__all__ = ["DROPPED", "FAULT", "KEY", "ROUTE", "Routes", "bearer", "error_response"]

# Per-request notes the pipeline leaves for the handlers.
ROUTE = web.RequestKey("aigateway_route", str)
FAULT = web.RequestKey("aigateway_fault", Fault)
KEY = web.RequestKey("aigateway_key", str)
DROPPED = web.RequestKey("aigateway_dropped", bool)


def error_response(status: int, message: str, *, type_: str, code: str, param: str | None = None) -> web.Response:
    """The gateway's error body: ``{"error": {"message", "type", "code", "param"}}``."""
    body = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return web.json_response(body, status=status)


def bearer(request: web.Request) -> str | None:
    """The Bearer token of ``request``, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Routes(JobRunner):
    """Request handlers (the pipeline in :class:`~vidmatte_aigateway.emulator.Emulator` runs first)."""

    # -- gateway routes ----------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        key = request[KEY]
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return error_response(400, "Body is not valid JSON.", type_="invalid_request_error", code="invalid_json")
        if not isinstance(body, dict):
            return error_response(400, "Body must be an object.", type_="invalid_request_error", code="invalid_json")
        idempotency_key = request.headers.get("Idempotency-Key")
        fingerprint = json.dumps(body, sort_keys=True)
        if idempotency_key and (key, idempotency_key) in self._idempotency:
            job_id, first = self._idempotency[(key, idempotency_key)]
            if first != fingerprint and self.config.strict_idempotency:
                # GUESS: undocumented; what idempotent APIs commonly answer.
                return error_response(
                    422,
                    "Idempotency-Key reused with a different request.",
                    type_="invalid_request_error",
                    code="idempotency_key_reused",
                )
            self.counters.idempotent_replays += 1
            return web.json_response(self._record(self.jobs[job_id], request), status=202)
        if body.get("model") != self.config.model:
            return error_response(
                404,
                f"Model {body.get('model')!r} not found.",
                type_="invalid_request_error",
                code="model_not_found",
                param="model",
            )
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return error_response(
                400,
                "Missing required field 'prompt'.",
                type_="invalid_request_error",
                code="missing_field",
                param="prompt",
            )
        field = self.config.input_field
        input_url = body.get(field)
        if not isinstance(input_url, str) or urlsplit(input_url).scheme not in {"http", "https"}:
            return error_response(
                400,
                f"Missing or invalid field {field!r}.",
                type_="invalid_request_error",
                code="missing_field",
                param=field,
            )
        tag = request.headers.get("x-aig-tag")
        if tag is not None and len(tag) > 64:
            return error_response(
                400, "x-aig-tag is longer than 64 characters.", type_="invalid_request_error", code="invalid_tag"
            )
        account = self.config.accounts[key]
        if account.credits is not None and account.credits <= 0:
            return error_response(
                402, "Insufficient credits.", type_="insufficient_credits", code="insufficient_credits"
            )
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
        fault = request.get(FAULT)
        job.must_fail = fault is not None and fault.kind == "fail"
        self.jobs[job.id] = job
        if idempotency_key:
            self._idempotency[(key, idempotency_key)] = (job.id, fingerprint)
        self.counters.submissions += 1
        job.task = loop.create_task(self._process(job, origin_of(request)))
        return web.json_response(self._record(job, request), status=202)

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job"])
        if job is None or job.key != request[KEY]:
            return error_response(404, "Job not found.", type_="invalid_request_error", code="job_not_found")
        now = asyncio.get_running_loop().time()
        interval = self.config.min_poll_interval
        if interval > 0 and job.last_poll is not None and now - job.last_poll < interval:
            self.counters.not_modified += 1
            return web.Response(status=304)
        job.last_poll = now
        response = web.json_response(self._record(job, request))
        if job.status == "completed" and job.charged is not None and self.config.cost_report in {"header", "both"}:
            response.headers["X-Cost-Cents"] = cents(job.charged)
        return response

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job"])
        if job is None or job.key != request[KEY]:
            return error_response(404, "Job not found.", type_="invalid_request_error", code="job_not_found")
        if not job.terminal:
            # GUESS: the docs say "cancel a queued job"; a running one is cancelled too, uncharged.
            job.status = "cancelled"
            if job.task is not None:
                job.task.cancel()
            self._deliver_webhook(job, origin_of(request))
        return web.json_response(self._record(job, request))

    async def _cancel_delete(self, request: web.Request) -> web.StreamResponse:
        if self.config.cancel_form == "post":
            return error_response(405, "Method not allowed.", type_="invalid_request_error", code="method_not_allowed")
        return await self._cancel(request)

    async def _cancel_post(self, request: web.Request) -> web.StreamResponse:
        if self.config.cancel_form == "delete":
            return error_response(404, "Not found.", type_="invalid_request_error", code="not_found")
        return await self._cancel(request)

    def _completed_job(self, request: web.Request) -> Job | None:
        job = self.jobs.get(request.match_info["job"])
        if job is None or job.status != "completed" or job.output is None:
            return None
        if request.match_info["file"] != OUTPUT_NAME:
            return None
        return job

    async def _download(self, request: web.Request) -> web.StreamResponse:
        job = self._completed_job(request)
        if job is None:
            return error_response(404, "File not found.", type_="invalid_request_error", code="file_not_found")
        fault = request.get(FAULT)
        if "signature" in request.query:
            expires = request.query.get("expires", "")
            good = sign_path(self._secret, request.path, expires)
            if not secrets.compare_digest(good, request.query["signature"]):
                return error_response(403, "Invalid signature.", type_="authentication_error", code="invalid_signature")
            if (fault is not None and fault.kind == "expire") or float(expires or 0) < time.time():
                return error_response(403, "Signed URL expired.", type_="authentication_error", code="url_expired")
        elif job.key != request.get(KEY):
            return error_response(404, "File not found.", type_="invalid_request_error", code="file_not_found")
        assert job.output is not None
        data = job.output.read_bytes()
        if fault is not None and fault.kind == "truncate":
            response = web.StreamResponse(headers={"Content-Type": "video/webm", "Content-Length": str(len(data))})
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            request[DROPPED] = True
            if request.transport is not None:
                request.transport.abort()
            return response
        return web.Response(body=data, content_type="video/webm")

    async def _signed(self, request: web.Request) -> web.StreamResponse:
        job = self._completed_job(request)
        if job is None or job.key != request[KEY]:
            return error_response(404, "File not found.", type_="invalid_request_error", code="file_not_found")
        try:
            ttl = float(request.query.get("expires_in", "3600"))
        except ValueError:
            return error_response(
                400, "expires_in must be a number.", type_="invalid_request_error", code="invalid_param"
            )
        url, expires = self._sign(job, origin_of(request), ttl)
        return web.json_response({"url": url, "expires_at": expires})

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        if model != self.config.model:
            return error_response(404, "Model not found.", type_="invalid_request_error", code="model_not_found")
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
            return error_response(404, "Model not found.", type_="invalid_request_error", code="model_not_found")
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
            return web.json_response({"url": f"{origin_of(request)}/_emulator/uploads/{upload_id}/{name}"})
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

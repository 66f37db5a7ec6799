"""The emulator's jobs: state, processing (fetch, probe, matte, finish, charge) and rendering."""

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
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from vidmatte import MattingBackend
from vidmatte_aigateway.emulator._config import EmulatorConfig, Fault
from vidmatte_aigateway.emulator._jobs import Bucket, Job, Stats, sign_path
from vidmatte_aigateway.emulator._media import (
    local_backend,
    local_engine_available,
    matte_local,
    matte_synthetic,
    probe_duration,
)
from vidmatte_aigateway.webhooks import sign_webhook

__all__ = ["OUTPUT_NAME", "JobFailure", "JobRunner", "cents", "origin_of"]

_log = logging.getLogger("vidmatte.aigateway.emulator")
_T = TypeVar("_T")

OUTPUT_NAME = "output.webm"


class JobRunner:
    """The emulator's state and everything that happens to a job off the request path."""

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

    @property
    def workdir(self) -> Path:
        """Where uploads and outputs live while the emulator runs."""
        assert self._workdir is not None, "the emulator is not started"
        return Path(self._workdir.name)

    # -- jobs ------------------------------------------------------------------------------

    def _sign(self, job: Job, origin: str, ttl: float) -> tuple[str, float]:
        path = f"/v1/files/jobs/{job.id}/{OUTPUT_NAME}"
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
            url, _ = self._sign(job, origin_of(request), config.url_ttl)
            details = {"duration": job.duration, "resolution": job.resolution}
            if config.result_field == "result.url":
                record["result"] = {"url": url, **details}
            elif config.result_field == "result.file_url":
                record["result"] = {"file_url": url, **details}
            else:
                record["result_url"] = url  # the SDK's shape: no duration beside it
            if job.charged is not None and config.cost_report in {"usage", "both"}:
                record["usage"] = {"cost_cents": float(cents(job.charged))}
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
                raise JobFailure("upstream_error", "The upstream model failed to process the video.")
            output = folder / OUTPUT_NAME
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
        except JobFailure as exc:
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
                raise JobFailure("input_unreachable", "The input URL answered 404.")
            return path
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        dest = folder / "input.bin"
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise JobFailure("input_unreachable", f"The input URL answered {response.status}.")
                size = 0
                with dest.open("wb") as out:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        size += len(chunk)
                        if size > self.config.max_upload_bytes:
                            raise JobFailure("payload_too_large", "The input video is too large.")
                        out.write(chunk)
        except aiohttp.ClientError as exc:
            raise JobFailure(
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
                record["usage"] = {"cost_cents": float(cents(job.charged))}
        elif status == "failed":
            record["error"] = {"code": job.error_code, "message": job.error_message}
        record["event"] = f"job.{status}"
        return record


class JobFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def cents(amount: Decimal) -> str:
    return format((amount * 100).normalize(), "f")


def _resolution(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return f"{ctx.width}x{ctx.height}"


def origin_of(request: web.Request) -> str:
    """``http://127.0.0.1:PORT`` as the client reached us (no trailing slash)."""
    return str(request.url.origin()).rstrip("/")

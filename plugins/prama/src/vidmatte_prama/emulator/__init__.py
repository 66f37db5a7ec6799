"""A loopback emulator of Prama's image API (BackgroundErase / BEN), for tests and benchmarks.

It speaks the documented protocol (reference: providers.md, section 2):
``POST /v2`` with a multipart ``image_file`` (raw PNG back) or JSON ``image`` /
``image_base64`` (base64; ``image`` answers JSON ``{mask, width, height}``),
``channels=alpha`` for the mask alone, header ``x-api-key``, ``GET /v2/health``,
and the documented error bodies ``{"error": {code, message, status, request_id}}``
(401 ``missing_api_key`` / ``invalid_api_key``, 413 ``payload_too_large`` /
``image_too_large``).  The host does not matter: point either documented base
URL's path at it.

Masks come from the local engine when installed (through the public plugin
API), else from a deterministic synthetic mask of the image's content.  Faults
are switches: latency, a per-key rate limit (429 + ``Retry-After``), random
503s and dropped connections, and a script of faults for the next requests.
Per-key counters (calls, masks returned = charges) and every returned mask are
readable from Python (:meth:`Emulator.stats`, :attr:`Emulator.records`) and
over HTTP (``GET /_emulator/stats``, ``GET /_emulator/masks``;
``POST /_emulator/config`` changes switches).

Run it: ``python -m vidmatte_prama.emulator --port 8787 --latency 0.15 --rps 20``.
In tests::

    with Emulator(EmulatorConfig(latency=0.05)) as emulator:
        settings = {"base_url": emulator.base_url}
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

from vidmatte_prama.emulator._masks import MaskSource, SyntheticMasks, mask_source, synthetic_mask
from vidmatte_prama.emulator._server import (
    FAULTS,
    EmulatorConfig,
    EmulatorState,
    KeyStats,
    RecordedMask,
    apply_config,
    build_app,
    key_label,
)

__all__ = [
    "FAULTS",
    "Emulator",
    "EmulatorConfig",
    "KeyStats",
    "MaskSource",
    "RecordedMask",
    "SyntheticMasks",
    "key_label",
    "synthetic_mask",
]


class Emulator:
    """The emulator on ``127.0.0.1``, served from a background thread (its own event loop).

    ``port=0`` picks a free port; :attr:`base_url` says which.  Use it as a
    context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        port: int = 0,
        masks: str | MaskSource = "auto",
    ) -> None:
        self.config = config or EmulatorConfig()
        self._port = port
        self._masks_choice = masks
        self._state: EmulatorState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        """The port actually listened on (after :meth:`start`)."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL to configure (``POST /v2`` lives under it)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def masks(self) -> str:
        """Which mask source answers: ``local`` or ``synthetic``."""
        return self._state.masks.name if self._state else ""

    def start(self) -> Emulator:
        """Start serving; returns once the port is bound."""
        masks = self._masks_choice if not isinstance(self._masks_choice, str) else mask_source(self._masks_choice)
        self._state = EmulatorState(self.config, masks)
        self._thread = threading.Thread(target=self._serve, name="prama-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"emulator failed to start: {self._error}") from self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the caller's thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._close())
        loop.close()

    async def _open(self) -> None:
        assert self._state is not None
        self._runner = web.AppRunner(build_app(self._state), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._state is not None:
            await self._state.masks.aclose()

    def stop(self) -> None:
        """Stop serving and release the mask engine."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def configure(self, **changes: Any) -> None:
        """Change switches while running (names of :class:`EmulatorConfig`)."""
        assert self._state is not None, "start the emulator first"
        apply_config(self._state, changes)

    def stats(self, key: str) -> KeyStats:
        """Counters of ``key`` (a copy): calls, masks returned (charges), statuses."""
        assert self._state is not None, "start the emulator first"
        with self._state.lock:
            stats = self._state.stats.get(key_label(key), KeyStats())
            return KeyStats(stats.calls, stats.masks, dict(stats.statuses))

    @property
    def records(self) -> list[RecordedMask]:
        """Every mask returned so far, in the order they were made."""
        assert self._state is not None, "start the emulator first"
        with self._state.lock:
            return list(self._state.records)

    def reset(self) -> None:
        """Forget counters, records and rate buckets (the switches stay)."""
        assert self._state is not None, "start the emulator first"
        fresh = EmulatorState(self.config, self._state.masks)
        with self._state.lock:
            self._state.stats = fresh.stats
            self._state.records = fresh.records
            self._state._buckets = {}

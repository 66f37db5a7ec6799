"""A local AIgateway: the documented protocol on loopback, every variant switchable.

Start it from the command line::

    python -m vidmatte_aigateway.emulator --port 8799 --speed 0.05

or from tests, in process (an ephemeral port each time)::

    async with run_emulator(EmulatorConfig(speed_factor=0.01)) as emulator:
        settings = {"base_url": emulator.base_url, "media_url": emulator.base_url,
                    "api_key": EMULATOR_KEY}
        emulator.inject("429", route="poll", count=2)
        ...
        assert emulator.stats()["submissions"] == 1

    with emulator_thread(config) as emulator:   # sync tests, subprocesses
        subprocess.run([... "vidmatte", "remove", ...], env={"AIGATEWAY_BASE_URL": emulator.base_url, ...})

Outputs are real: the installed ``local`` backend mattes the video when
present (``engine="auto"``/``"local"``), else a deterministic synthetic matte
(``engine="synthetic"``); either way the result is a WebM (VP9, ``yuva420p``).
Uploads: ``POST /_emulator/uploads`` (multipart ``file``, what vidmatte's
``http`` uploader sends) answers ``{"url": ...}``.  Test hooks:
``GET /_emulator/stats``, ``POST /_emulator/config``, ``POST /_emulator/faults``,
``POST /_emulator/reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from vidmatte_aigateway.emulator._app import Emulator
from vidmatte_aigateway.emulator._config import FAULT_KINDS, ROUTES, Account, EmulatorConfig, Fault

__all__ = [
    "EMULATOR_KEY",
    "FAULT_KINDS",
    "ROUTES",
    "Account",
    "Emulator",
    "EmulatorConfig",
    "EmulatorThread",
    "Fault",
    "emulator_thread",
    "run_emulator",
]

EMULATOR_KEY = "sk-aig-emulator"
"""The API key the default configuration accepts."""


@contextlib.asynccontextmanager
async def run_emulator(config: EmulatorConfig | None = None, *, port: int = 0) -> AsyncIterator[Emulator]:
    """An emulator serving on ``127.0.0.1`` (ephemeral port by default) for the block's duration."""
    emulator = Emulator(config)
    await emulator.start(port=port)
    try:
        yield emulator
    finally:
        await emulator.stop()


class EmulatorThread:
    """An emulator on its own event loop in a background thread (for sync code and subprocesses).

    Control calls (:meth:`inject`, :meth:`configure`, :meth:`stats`) run on the
    emulator's loop, so they are safe from any thread.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, port: int = 0) -> None:
        self.emulator = Emulator(config)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aigateway-emulator", daemon=True)
        self.base_url = ""

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def start(self) -> str:
        """Start the thread and the server; return the base URL."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.emulator.start(port=self._port), self._loop)
        self.base_url = future.result(timeout=30)
        return self.base_url

    def stop(self) -> None:
        """Stop the server and the thread."""
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def inject(self, kind: str, **options: Any) -> Fault:
        """Queue a fault (see :meth:`Emulator.inject`)."""
        fault: Fault = self._call(self.emulator.inject, kind, **options)
        return fault

    def configure(self, **changes: Any) -> None:
        """Change switches (see :meth:`Emulator.configure`)."""
        self._call(self.emulator.configure, **changes)

    def stats(self) -> dict[str, Any]:
        """The emulator's counters."""
        stats: dict[str, Any] = self._call(self.emulator.stats)
        return stats


@contextlib.contextmanager
def emulator_thread(config: EmulatorConfig | None = None, *, port: int = 0) -> Iterator[EmulatorThread]:
    """An :class:`EmulatorThread`, started for the block's duration."""
    runner = EmulatorThread(config, port=port)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()

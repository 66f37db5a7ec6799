"""The frame pipeline's last stage, on its own thread: smooth, refine, compose, encode."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vidmatte._frames_refine import EdgeRefiner, TemporalSmoother, resize
from vidmatte.media._decode import DecodedFrame
from vidmatte.media._encode import FrameWriter

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["EncodeStage", "mask_to_alpha"]

_END = object()


def mask_to_alpha(
    frame: DecodedFrame, mask: NDArray[np.uint8], smoother: TemporalSmoother, refiner: EdgeRefiner | None
) -> NDArray[np.uint8]:
    """The full-resolution alpha for ``frame`` from a (possibly smaller) mask.

    A mask at full resolution (or with no ``refiner``) is only smoothed (and resized).  A smaller one is brought to
    the small frame's size, smoothed there (cheap), then refined against the
    full-resolution luma by the guided filter.
    """
    import numpy as np

    height, width = frame.height, frame.width
    m = mask.astype(np.float32)
    m *= 1 / 255
    if mask.shape[:2] == (height, width) or frame.small is None or frame.gray is None or refiner is None:
        m = smoother.smooth(resize(m, height, width))
        full: NDArray[np.uint8] = (m * 255 + 0.5).astype(np.uint8)
        return full
    sh, sw = frame.small.shape[:2]
    m = smoother.smooth(resize(m, sh, sw))
    guide_small = (
        resize(frame.gray.astype(np.float32) * (1 / 255), sh, sw) if frame.small_gray is None else frame.small_gray
    )
    return refiner.refine(m, guide_small, frame.gray)


class EncodeStage:
    """Two threads that turn (frame, mask) pairs, in order, into the output file.

    The *post* thread smooths and refines each mask and composes the picture
    (numpy, OpenCV and swscale: they release the GIL); the *encode* thread only
    encodes and muxes (the codec releases the GIL too).  :meth:`put` applies
    backpressure (bounded queues); :meth:`finish` waits for the complete file;
    :meth:`abort` stops and deletes it.
    """

    def __init__(
        self,
        writer_factory: Callable[[DecodedFrame], FrameWriter],
        *,
        on_progress: Callable[[int], None],
        smoothing: bool = True,
        refine: bool = True,
        depth: int = 6,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._outbox: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._writer_factory = writer_factory
        self._writer: FrameWriter | None = None
        self._on_progress = on_progress
        self._smoother = TemporalSmoother(calm=0.5 if smoothing else 1.0)
        self._refiner = EdgeRefiner() if refine else None
        self._aborted = threading.Event()
        self._done: asyncio.Future[int] = self._loop.create_future()
        self.frames = 0
        self._post = threading.Thread(target=self._run_post, name="vidmatte-post", daemon=True)
        self._encode = threading.Thread(target=self._run_encode, name="vidmatte-encode", daemon=True)
        self._post.start()
        self._encode.start()

    def _report(self, callback: Callable[..., None], *args: Any) -> None:
        # RuntimeError: the loop closed under us, nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    def _resolve(self, frames: int | None, exc: BaseException | None) -> None:
        if self._done.done():
            return
        if exc is not None:
            self._done.set_exception(exc)
        else:
            self._done.set_result(frames or 0)

    def _fail(self, exc: BaseException) -> None:
        self._aborted.set()
        self._report(self._resolve, None, exc)

    def _run_post(self) -> None:
        try:
            while True:
                item = self._inbox.get()
                if item is _END or self._aborted.is_set():
                    break
                frame, mask = item
                if self._writer is None:
                    self._writer = self._writer_factory(frame)
                alpha = mask_to_alpha(frame, mask, self._smoother, self._refiner)
                self._hand_over(self._writer.prepare(frame.rgb, alpha, frame.source))
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, which raises it
            self._fail(exc)
        self._hand_over(_END)

    def _hand_over(self, item: Any) -> None:
        while True:
            try:
                self._outbox.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._aborted.is_set() and item is not _END:
                    return

    def _run_encode(self) -> None:
        writer: FrameWriter | None = None
        try:
            while True:
                item = self._outbox.get()
                if item is _END or self._aborted.is_set():
                    break
                writer = self._writer  # set by the post thread before its first hand-over
                assert writer is not None
                writer.write_prepared(item)
                self.frames += 1
                if self.frames % 5 == 0:
                    self._report(self._on_progress, self.frames)
            writer = self._writer
            if self._aborted.is_set():
                if writer is not None:
                    writer.abort()
                return
            if writer is not None:
                writer.close()
            self._report(self._on_progress, self.frames)
            self._report(self._resolve, self.frames, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, which raises it
            self._aborted.set()
            if writer is not None:
                writer.abort()
            self._report(self._resolve, None, exc)

    def _put_blocking(self, item: Any) -> None:
        while not self._aborted.is_set():
            try:
                self._inbox.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    async def put(self, frame: DecodedFrame, mask: NDArray[np.uint8]) -> None:
        """Queue one frame and its mask (waits while the encoder is behind)."""
        if self._done.done():
            self._done.result()  # re-raise the encoder's failure here
        try:
            self._inbox.put_nowait((frame, mask))
        except queue.Full:
            await asyncio.to_thread(self._put_blocking, (frame, mask))
            if self._done.done():
                self._done.result()

    async def finish(self) -> int:
        """Close the output and return the number of frames written."""
        await asyncio.to_thread(self._put_blocking, _END)
        return await self._done

    def abort(self) -> None:
        """Stop and delete the output (from any thread; returns at once)."""
        self._aborted.set()
        for box in (self._inbox, self._outbox):
            with contextlib.suppress(queue.Full):  # the threads see the flag after their current frame
                box.put_nowait(_END)

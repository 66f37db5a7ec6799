"""One run of the frame pipeline: decode -> matte (batched, limited) -> reassemble -> encode.

Three kinds of work overlap: decoding on a dedicated thread, the backend's
``matte`` calls (bounded by its concurrency and rate), and smoothing,
refinement and encoding on the encode thread.  Queues between them are
bounded, so memory stays flat whatever the clip's length.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from vidmatte._frames_encode import EncodeStage
from vidmatte._frames_plan import FrameChooser
from vidmatte._frames_refine import blend_masks
from vidmatte._frames_store import JobStore
from vidmatte._models import MediaInfo, OutputSpec
from vidmatte._ratelimit import RateLimiter
from vidmatte.contract import FrameMatter
from vidmatte.errors import ProtocolError
from vidmatte.media._decode import DecodedFrame, VideoReader, frame_rgb
from vidmatte.media._encode import FrameWriter, open_writer

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["PipelineRun", "RunCounters", "Superseded"]

GUIDE_SIDE = 320
"""Longest side of the small frames used as the refinement guide and for change detection,
when the backend does not ask for small frames itself."""

_HOLD_BYTES = 96 * 1024 * 1024
"""Frames waiting for the next sent frame's mask (frame economy) hold at most this much."""


class Superseded(Exception):
    """The job was taken over by another backend instance: this run stops quietly."""


@attrs.define
class _Slot:
    frame: DecodedFrame
    mask: NDArray[np.uint8] | None = None
    future: asyncio.Future[NDArray[np.uint8]] | None = None

    @property
    def propagated(self) -> bool:
        return self.mask is None and self.future is None


@attrs.define
class RunCounters:
    """What a run has done so far (read by polls)."""

    frames_total: int = 0
    frames_encoded: int = 0
    calls: int = 0
    """Frames sent to the backend in this run."""
    reused: int = 0
    """Frames whose mask came from an earlier run's checkpoint."""
    propagated: int = 0
    """Frames whose mask was interpolated or held (frame economy)."""


class PipelineRun:
    """Runs one job's frames through a :class:`FrameMatter` into the output file."""

    def __init__(
        self,
        matter: FrameMatter,
        *,
        source: Path,
        info: MediaInfo,
        output: OutputSpec,
        dest: Path,
        store: JobStore,
        chooser: FrameChooser,
        semaphore: asyncio.Semaphore,
        limiter: RateLimiter | None,
        on_progress: Callable[[RunCounters], None],
        on_checkpoint: Callable[[RunCounters, Path | None], None],
        smoothing: bool = True,
        refine: bool = True,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.matter = matter
        self.source = source
        self.info = info
        self.output = output
        self.dest = dest
        self.store = store
        self.chooser = chooser
        self.semaphore = semaphore
        self.limiter = limiter
        self.on_progress = on_progress
        self.on_checkpoint = on_checkpoint
        self.smoothing = smoothing
        self.refine = refine
        self.stopped = stopped
        self.counters = RunCounters(frames_total=info.frame_count)
        limits = matter.limits
        self.batch_size = max(1, limits.batch_size)
        self.send_small = limits.max_side is not None
        self.reader_side = limits.max_side or GUIDE_SIDE
        self.window = max(16, 2 * self.batch_size * max(1, limits.max_concurrency))
        self._saves: set[asyncio.Future[Path]] = set()
        self._batches: asyncio.Queue[list[_Slot] | None] = asyncio.Queue()
        # A free matter (the local engine) costs nothing to ask again: its masks are not kept.
        self.keep_masks = matter.cost_per_call().amount > 0

    def _writer(self, frame: DecodedFrame) -> FrameWriter:
        height, width = frame.height, frame.width
        audio = self.source if self.info.has_audio else None
        return open_writer(self.dest, self.output, width=width, height=height, fps=self.info.fps, audio_from=audio)

    def _progress(self, frames: int) -> None:
        self.counters.frames_encoded = frames
        self.on_progress(self.counters)

    async def run(self) -> int:
        """Produce the output at ``dest``; returns the number of frames written."""
        loop = asyncio.get_running_loop()
        decoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vidmatte-decode")
        reader = await loop.run_in_executor(
            decoder,
            lambda: VideoReader(self.source, max_side=self.reader_side, trim=self.output.trim, luma=True, rgb=False),
        )
        encode = EncodeStage(self._writer, on_progress=self._progress, smoothing=self.smoothing, refine=self.refine)
        slots: asyncio.Queue[_Slot | None] = asyncio.Queue(self.window)
        # Unbounded, yet never long: batches are made from frames in ``slots``, which is bounded.
        self._batches = asyncio.Queue()
        finished = False
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._produce(loop, decoder, reader, slots, group))
                    group.create_task(self._dispatch(group))
                    group.create_task(self._assemble(slots, encode))
            except BaseExceptionGroup as failures:
                # One failure cancels its siblings; the first real one is the job's error.
                raise _root_cause(failures) from None
            frames = await encode.finish()
            finished = True
            return frames
        finally:
            if not finished:
                encode.abort()
            if self._saves:
                await asyncio.gather(*self._saves, return_exceptions=True)
            # Closing on the decode thread waits for a read still in flight there.
            decoder.submit(reader.close)
            decoder.shutdown(wait=False)

    async def _produce(
        self,
        loop: asyncio.AbstractEventLoop,
        decoder: concurrent.futures.Executor,
        reader: VideoReader,
        slots: asyncio.Queue[_Slot | None],
        group: asyncio.TaskGroup,
    ) -> None:
        batch: list[_Slot] = []
        held: DecodedFrame | None = None
        while True:
            frames = await loop.run_in_executor(decoder, reader.read, 8)
            # One frame of lookahead: the last frame is always sent (frame economy).
            for frame in frames:
                if held is not None:
                    await self._place(held, False, batch, slots, group)
                held = frame
            if not frames:
                break
        if held is not None:
            await self._place(held, True, batch, slots, group)
        if batch:
            self._launch(batch, group)
        self._batches.put_nowait(None)
        await slots.put(None)

    async def _place(
        self,
        frame: DecodedFrame,
        last: bool,
        batch: list[_Slot],
        slots: asyncio.Queue[_Slot | None],
        group: asyncio.TaskGroup,
    ) -> None:
        send = self.chooser.send(frame.index, frame.small, last=last)
        slot = _Slot(frame)
        if self.store.has_mask(frame.index):
            slot.mask = self.store.mask(frame.index)
            self.counters.reused += 1
        elif send:
            slot.future = asyncio.get_running_loop().create_future()
            batch.append(slot)
            if len(batch) >= self.batch_size:
                self._launch(list(batch), group)
                batch.clear()
        if slots.full() and batch:
            # The assembler may be waiting on a frame of this unfinished batch: send it now.
            self._launch(list(batch), group)
            batch.clear()
        await slots.put(slot)

    def _launch(self, batch: list[_Slot], group: asyncio.TaskGroup) -> None:
        self._batches.put_nowait(batch)

    async def _dispatch(self, group: asyncio.TaskGroup) -> None:
        """Start calls in frame order as the concurrency and rate limits allow.

        One task takes the permits, in order: calls racing for a semaphore can
        start out of order, and the assembler then waits on the late ones.
        """
        while (batch := await self._batches.get()) is not None:
            if self.stopped():
                raise Superseded  # before paying for anything more
            await self.semaphore.acquire()
            try:
                if self.limiter is not None:
                    await self.limiter.acquire()
                task = group.create_task(self._call(batch))
            except BaseException:
                self.semaphore.release()
                raise
            # Released when the call ends, however it ends (even cancelled before it starts).
            task.add_done_callback(lambda _: self.semaphore.release())

    async def _call(self, batch: list[_Slot]) -> None:
        import numpy as np

        if self.send_small:
            frames = [s.frame.small if s.frame.small is not None else frame_rgb(s.frame) for s in batch]
        else:
            frames = await asyncio.to_thread(lambda: [frame_rgb(s.frame) for s in batch])
        try:
            masks = await self.matter.matte(frames)
            if len(masks) != len(batch):
                raise ProtocolError(
                    f"frame backend returned {len(masks)} masks for {len(batch)} frames", backend=self.matter.name
                )
            clean: list[NDArray[np.uint8]] = []
            for mask in masks:
                array = np.asarray(mask)
                if array.ndim == 3:
                    array = array[..., -1] if array.shape[2] in (2, 4) else array[..., 0]
                if array.ndim != 2:
                    raise ProtocolError("frame backend returned a mask that is not an image", backend=self.matter.name)
                clean.append(np.ascontiguousarray(array, dtype=np.uint8))
            self.counters.calls += len(batch)
            chunk: Path | None = None
            if self.keep_masks:
                # These masks are paid for: the save runs to the end even if the job is being
                # cancelled or failing (run() waits for it), so a resubmit never asks for them again.
                saving = asyncio.ensure_future(
                    asyncio.to_thread(self.store.save_masks, [s.frame.index for s in batch], clean)
                )
                self._saves.add(saving)
                saving.add_done_callback(self._saves.discard)
                chunk = await asyncio.shield(saving)
            self.on_checkpoint(self.counters, chunk)
        except BaseException:
            # The error travels through the task group; waiters are just released.
            for slot in batch:
                if slot.future is not None and not slot.future.done():
                    slot.future.cancel()
            raise
        for slot, mask in zip(batch, clean, strict=True):
            assert slot.future is not None
            if not slot.future.done():
                slot.future.set_result(mask)

    async def _assemble(self, slots: asyncio.Queue[_Slot | None], encode: EncodeStage) -> None:
        previous: tuple[int, NDArray[np.uint8]] | None = None
        pending: list[_Slot] = []
        hold = None
        while (slot := await slots.get()) is not None:
            if self.stopped():
                raise Superseded
            if slot.propagated:
                pending.append(slot)
                if hold is None:
                    hold = max(1, min(64, _HOLD_BYTES // max(1, 3 * slot.frame.width * slot.frame.height)))
                if len(pending) >= hold and previous is not None:
                    await self._flush(pending, previous, None, encode)
                continue
            mask = slot.mask if slot.mask is not None else await slot.future  # type: ignore[misc]
            assert mask is not None
            await self._flush(pending, previous, (slot.frame.index, mask), encode)
            await encode.put(slot.frame, mask)
            previous = (slot.frame.index, mask)
        await self._flush(pending, previous, None, encode)

    async def _flush(
        self,
        pending: list[_Slot],
        before: tuple[int, NDArray[np.uint8]] | None,
        after: tuple[int, NDArray[np.uint8]] | None,
        encode: EncodeStage,
    ) -> None:
        """Give held frames masks: interpolated between two sent frames, or held from the last one."""
        for slot in pending:
            if before is not None and after is not None:
                t = (slot.frame.index - before[0]) / max(1, after[0] - before[0])
                mask = blend_masks(before[1], after[1], t)
            else:
                known = before if before is not None else after
                assert known is not None, "the first frame is always sent"
                mask = known[1]
            self.counters.propagated += 1
            await encode.put(slot.frame, mask)
        pending.clear()


def _root_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for leaf in leaves:
        if not isinstance(leaf, asyncio.CancelledError):
            return leaf
    return leaves[0] if leaves else group

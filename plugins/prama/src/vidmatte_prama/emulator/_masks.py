"""Where the emulator's masks come from: the local engine when installed, else a synthetic one."""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["MaskSource", "SyntheticMasks", "local_masks", "mask_source"]


class MaskSource(Protocol):
    """Makes the mask of one RGB image."""

    name: str

    async def mask(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A ``uint8`` mask the size of ``image`` (255 = foreground)."""

    async def aclose(self) -> None:
        """Release the engine."""


class SyntheticMasks:
    """A deterministic mask derived from the image itself: pixels far from the border's colour.

    Not a matting model, but a function of the content: a moving subject gives a
    moving mask, so tests can check frame order and scaling, and the same image
    always gives the same mask.
    """

    name = "synthetic"

    async def mask(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Foreground = colour distance from the median border colour, ramped over 24..56."""
        return synthetic_mask(image)

    async def aclose(self) -> None:
        """Nothing to release."""


def synthetic_mask(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The synthetic mask of an RGB image (see :class:`SyntheticMasks`)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    background = np.median(border, axis=0).astype(np.int16)
    # int16 throughout: a float pipeline costs the emulator 5x the CPU on every request.
    distance = np.abs(image.astype(np.int16) - background).sum(axis=2, dtype=np.int16)
    distance -= 24
    np.clip(distance, 0, 32, out=distance)
    mask: NDArray[np.uint8] = np.minimum(distance * 8, 255).astype(np.uint8)
    return mask


class _LocalMasks:
    """Masks from the ``local`` backend's frame matter, found through the public plugin API."""

    name = "local"

    def __init__(self, matter: Any, backend: Any) -> None:
        self._matter = matter
        self._backend = backend

    async def mask(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        masks = await self._matter.matte([image])
        mask = np.asarray(masks[0], dtype=np.uint8)
        if mask.shape != image.shape[:2]:
            from vidmatte_prama._codec import scale_mask

            mask = scale_mask(mask, image.shape[1], image.shape[0])
        return mask

    async def aclose(self) -> None:
        closer = getattr(self._backend, "aclose", None) or self._matter.aclose
        await closer()


class _LocalJobMasks:
    """Masks from the ``local`` backend run as a job on a one-frame clip (only the public job contract).

    Used when the local backend does not expose its frame matter: each image
    becomes a lossless one-frame video, the local backend mattes it into a PNG
    frame, and that frame's alpha is the mask (~0.1 s an image after the model loads).
    """

    name = "local"

    def __init__(self, backend: Any, work: Any) -> None:
        self._backend = backend
        self._dir = work
        self._count = 0

    async def mask(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        import asyncio
        import shutil
        from pathlib import Path

        from vidmatte import MattingRequest, OutputFormat, OutputSpec, Source
        from vidmatte.media import read_frames_rgba

        self._count += 1
        number = self._count  # requests overlap: read the counter once, before any await
        work = Path(self._dir.name)
        source, dest = work / f"image-{number}.mkv", work / f"mask-{number}"
        await asyncio.to_thread(_one_frame_clip, image, source)
        request = MattingRequest(
            Source(path=str(source)), OutputSpec(format=OutputFormat.PNG, keep_audio=False), {"smoothing": False}
        )
        try:
            handle = await self._backend.submit(request, idempotency_key=f"prama-emulator-{number}")
            for _ in range(60_000):  # bounded: ten minutes at most
                snapshot = await self._backend.poll(handle)
                if snapshot.state.is_terminal:
                    break
                await asyncio.sleep(0.01)
            artefact = snapshot.artefact()
            if artefact is None:
                raise RuntimeError(f"local engine failed: {snapshot.error}")
            await self._backend.download(handle, artefact, dest)
            rgba = await asyncio.to_thread(lambda: next(iter(read_frames_rgba(dest))))
        finally:
            source.unlink(missing_ok=True)
            shutil.rmtree(dest, ignore_errors=True)
        mask: NDArray[np.uint8] = np.ascontiguousarray(rgba[..., 3])
        return mask

    async def aclose(self) -> None:
        try:
            await self._backend.aclose()
        finally:
            self._dir.cleanup()


def _one_frame_clip(image: NDArray[np.uint8], path: Any) -> None:
    import av

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=25)  # lossless: the engine sees the image as sent
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "bgr0"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def local_masks() -> MaskSource | None:
    """The local engine as a mask source, or ``None`` when it is not installed.

    Its frame matter is used when the backend exposes one (a ``matter``
    attribute); otherwise the backend runs one-frame jobs through the public
    job contract.  Never imports the local plugin itself.
    """
    import tempfile
    from pathlib import Path

    import vidmatte
    from vidmatte.contract import FrameMatter

    with warnings.catch_warnings():
        # A broken unrelated plugin must not stop the emulator; it only costs us the local engine.
        warnings.simplefilter("ignore")
        manager = vidmatte.load_plugins()
    if "local" not in manager.backends:
        return None
    # A fresh folder per emulator: the engine's job cache must never answer for another run's image.
    work = tempfile.TemporaryDirectory(prefix="prama-emulator-")
    try:
        context = vidmatte.BackendContext(cache_dir=Path(work.name) / "cache")
        backend = manager.backend_spec("local").factory(context)
    except Exception:  # noqa: BLE001 - any failure of the engine's setup means: fall back to synthetic
        work.cleanup()
        return None
    matter = backend if isinstance(backend, FrameMatter) else getattr(backend, "matter", None)
    if isinstance(matter, FrameMatter):
        work.cleanup()
        return _LocalMasks(matter, backend)
    return _LocalJobMasks(backend, work)


def mask_source(kind: str) -> MaskSource:
    """``local`` (required), ``synthetic``, or ``auto`` (local when available, else synthetic)."""
    if kind == "synthetic":
        return SyntheticMasks()
    source = local_masks()
    if source is not None:
        return source
    if kind == "local":
        raise RuntimeError("the local engine is not installed (or exposes no frame matter)")
    return SyntheticMasks()

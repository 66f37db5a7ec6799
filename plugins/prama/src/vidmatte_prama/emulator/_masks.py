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
    pixels = image.astype(np.int16)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0)
    distance = np.abs(pixels - background).sum(axis=2)
    mask: NDArray[np.uint8] = np.clip((distance - 24) * 8, 0, 255).astype(np.uint8)
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


def local_masks() -> MaskSource | None:
    """The local engine as a mask source, or ``None`` when it is not installed or exposes no frame matter."""
    import vidmatte
    from vidmatte.contract import FrameMatter

    with warnings.catch_warnings():
        # A broken unrelated plugin must not stop the emulator; it only costs us the local engine.
        warnings.simplefilter("ignore")
        manager = vidmatte.load_plugins()
    if "local" not in manager.backends:
        return None
    try:
        backend = manager.backend_spec("local").factory(vidmatte.BackendContext())
    except Exception:  # noqa: BLE001 - any failure of the engine's setup means: fall back to synthetic
        return None
    matter = backend if isinstance(backend, FrameMatter) else getattr(backend, "matter", None)
    if not isinstance(matter, FrameMatter):
        return None
    return _LocalMasks(matter, backend)


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

"""Putting a matte to use: RGBA, a composite on a colour or image, or the matte alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidmatte._models import Background, OutputFormat, OutputSpec
from vidmatte.errors import ConfigurationError
from vidmatte.media._errors import media_error

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Compositor", "check_output", "resolve_output", "wants_alpha"]


def wants_alpha(output: OutputSpec) -> bool:
    """True when the output keeps a transparent background (an alpha channel)."""
    return output.format.has_alpha and output.background.is_transparent


def check_output(output: OutputSpec) -> None:
    """Raise a one-line :class:`ConfigurationError` for an output that cannot exist.

    The only such case: a transparent background in MP4 (H.264 carries no alpha).
    """
    if output.format is OutputFormat.MP4 and output.background.is_transparent:
        raise ConfigurationError(
            "mp4 (H.264) cannot carry a transparent background: give a background colour or image, "
            "or write .webm, .mov, .zip or a PNG folder"
        )


def resolve_output(
    format: OutputFormat, background: Background | None = None, *, keep_audio: bool = True
) -> OutputSpec:
    """An :class:`OutputSpec` with the usual default background for ``format``.

    ``background=None`` means "not asked for": transparent where the format has
    alpha, green for MP4.  An explicit transparent background in MP4 fails in
    :func:`check_output`.
    """
    if background is None:
        background = Background("colour") if format is OutputFormat.MP4 else Background()
    spec = OutputSpec(format=format, background=background, keep_audio=keep_audio)
    check_output(spec)
    return spec


class Compositor:
    """Turns (RGB frame, alpha) into what an output format stores.

    * alpha formats with a transparent background: RGBA;
    * any format with a colour or image background: RGB composited over it;
    * the matte format: the alpha alone (H x W).
    """

    def __init__(self, output: OutputSpec, width: int, height: int) -> None:
        import numpy as np

        check_output(output)
        self.output = output
        self.alpha = wants_alpha(output)
        self.matte = output.format is OutputFormat.MATTE
        self._background: NDArray[np.uint16] | None = None
        if not self.alpha and not self.matte:
            background = output.background
            if background.kind == "image" and background.image:
                image = _load_image(background.image, width, height)
            else:
                image = np.empty((height, width, 3), np.uint8)
                image[:] = np.asarray(background.colour, np.uint8)
            self._background = image.astype(np.uint16)

    def background_rgb(self) -> NDArray[np.uint8]:
        """The background picture (colour or image) at the frame size."""
        import numpy as np

        assert self._background is not None, "alpha and matte outputs have no background"
        picture: NDArray[np.uint8] = self._background.astype(np.uint8)
        return picture

    def compose(self, rgb: NDArray[np.uint8], alpha: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The stored picture for one frame."""
        import numpy as np

        if self.matte:
            return alpha
        if self.alpha:
            out = np.empty((*rgb.shape[:2], 4), np.uint8)
            out[..., :3] = rgb
            out[..., 3] = alpha
            return out
        assert self._background is not None
        a = alpha.astype(np.uint16)[..., None]
        # Integer blend, rounded: fg*a + bg*(255-a), /255 via the (x + 128) * 257 >> 16 trick.
        mixed = rgb.astype(np.uint16) * a + self._background * (255 - a) + 128
        return ((mixed + (mixed >> 8)) >> 8).astype(np.uint8)


def _load_image(path: str, width: int, height: int) -> NDArray[np.uint8]:
    """A background image, scaled to cover the frame, decoded by FFmpeg (no extra dependency)."""
    import av

    try:
        container: Any
        with av.open(path) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration) as exc:
        reason = exc if not isinstance(exc, StopIteration) else None
        raise media_error(path, "background image cannot be read", reason) from None
    scale = max(width / frame.width, height / frame.height)
    sw, sh = max(width, round(frame.width * scale)), max(height, round(frame.height * scale))
    rgb: NDArray[np.uint8] = frame.reformat(width=sw, height=sh, format="rgb24").to_ndarray()
    top, left = (sh - height) // 2, (sw - width) // 2
    return rgb[top : top + height, left : left + width].copy()

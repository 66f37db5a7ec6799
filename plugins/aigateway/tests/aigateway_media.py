"""Media helpers for the aigateway tests (a uniquely named module: every plugin has a conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["assert_meaningful_alpha", "decode_alpha"]


def decode_alpha(path: Path) -> list[NDArray[np.uint8]]:
    """The alpha plane of every frame of a VP9 WebM (libvpx decodes the alpha side data)."""
    import av

    planes = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9"
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        for packet in container.demux(stream):
            for frame in decoder.decode(packet):
                assert frame.format.name == "yuva420p"
                planes.append(np.asarray(frame.to_ndarray(format="rgba"), dtype=np.uint8)[..., 3])
    return planes


def assert_meaningful_alpha(path: Path, frames: int = 20) -> None:
    """The square (foreground) is opaque, the background transparent, in every frame."""
    planes = decode_alpha(path)
    assert len(planes) == frames
    for index, alpha in enumerate(planes):
        left = (index * 3) % (160 - 160 // 3)
        inside = alpha[40:80, left + 8 : left + 160 // 3 - 8]
        outside = alpha[:, :]
        assert inside.mean() > 200, f"frame {index}: foreground alpha {inside.mean():.0f}"
        assert (outside < 30).mean() > 0.5, f"frame {index}: most of the frame should be transparent"
        assert alpha[:20].max() < 30, f"frame {index}: the top rows are background"

"""vidmatte-prama: video background removal through Prama's image API, with your own key.

Prama Labs' hosted API (BackgroundErase / BEN) removes backgrounds from single
images, synchronously.  This plugin turns it into a video backend: vidmatte's
frame pipeline decodes the video, :class:`PramaMatter` sends each frame (or
the frames frame economy keeps) to ``POST /v2`` for its mask, and the pipeline
reassembles, smooths and encodes the result.

* Configure with ``PRAMA_API_KEY`` and ``[backends.prama]`` (:class:`PramaSettings`).
* :mod:`vidmatte_prama.emulator` is a loopback server speaking the protocol.
* :mod:`vidmatte_prama.testing` replays recorded exchanges and builds contexts for tests.
"""

from vidmatte_prama._matter import BACKEND_NAME, PramaMatter
from vidmatte_prama._settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_PRICE_PER_IMAGE,
    KNOWN_BASE_URLS,
    SIZES,
    PramaSettings,
    load_settings,
)

__all__ = [
    "API_KEY_ENV",
    "BACKEND_NAME",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_PRICE_PER_IMAGE",
    "KNOWN_BASE_URLS",
    "SIZES",
    "PramaMatter",
    "PramaSettings",
    "load_settings",
]

__version__ = "0.1.0"

"""Person matting with MediaPipe selfie segmentation, from the model inside the mediapipe wheel."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vidmatte import FrameLimits
from vidmatte.errors import ConfigurationError
from vidmatte_local._settings import LocalSettings
from vidmatte_local._threaded import ThreadedMatter

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["PersonMatter", "model_path"]

_MODEL_FILES = {"general": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}


def model_path(model: str) -> str:
    """Where the mediapipe wheel keeps the model (checked, never downloaded)."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the local backend needs mediapipe==0.10.21: pip install vidmatte-local")
    root = next(iter(spec.submodule_search_locations))
    path = os.path.join(root, "modules", "selfie_segmentation", _MODEL_FILES[model])
    if not os.path.isfile(path):
        raise ConfigurationError(
            f"mediapipe is installed but has no {_MODEL_FILES[model]}: the local backend needs "
            "mediapipe==0.10.21 (later releases no longer ship the model)"
        )
    return path


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """TFLite prints an INFO line straight to fd 2 when a model loads; keep the CLI clean."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class PersonMatter(ThreadedMatter):
    """A :class:`vidmatte.FrameMatter`: small RGB frames in, person masks out.

    Each worker thread owns one MediaPipe graph (they are not thread-safe);
    frames arrive already scaled to the model's 256 px, so MediaPipe does no
    resizing of its own.
    """

    def __init__(self, settings: LocalSettings) -> None:
        limits = FrameLimits(batch_size=settings.batch_size, max_concurrency=settings.workers, max_side=256)
        super().__init__(limits, workers=settings.workers, thread_name="vidmatte-person")
        self.settings = settings
        self._local = threading.local()
        self._models: list[Any] = []
        self._lock = threading.Lock()
        model_path(settings.model)  # fail at construction, with a clear message, if the model is missing

    def _model(self) -> Any:
        model = getattr(self._local, "model", None)
        if model is None:
            os.environ.setdefault("GLOG_minloglevel", "2")
            with _quiet_stderr():
                from mediapipe.python.solutions import selfie_segmentation

                model = selfie_segmentation.SelfieSegmentation(
                    model_selection=1 if self.settings.model == "landscape" else 0
                )
                # The first inference builds the TFLite interpreter, which logs as it does.
                import numpy as np

                model.process(np.zeros((144, 256, 3), np.uint8))
            self._local.model = model
            with self._lock:
                self._models.append(model)
        return model

    def _segment(self, frames: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        import numpy as np

        model = self._model()
        masks = []
        for frame in frames:
            probability = model.process(np.ascontiguousarray(frame)).segmentation_mask
            # The model's 0.4..0.6 band becomes the soft edge, the rest is fully in or out:
            # a wider band leaves a halo the edge refinement cannot remove (checked by eye
            # on the sample clip against 0.3..0.7 and 0.45..0.55).
            mask = np.clip((probability - 0.4) * (255 / 0.2), 0, 255)
            masks.append(mask.astype(np.uint8))
        return masks

    async def aclose(self) -> None:
        """Close the MediaPipe graphs and the worker threads."""
        await super().aclose()
        with self._lock:
            models, self._models = self._models, []
        for model in models:
            model.close()

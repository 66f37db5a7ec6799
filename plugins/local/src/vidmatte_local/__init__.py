"""vidmatte-local: the offline backend (MediaPipe person matting, static-camera background modelling)."""

__all__: list[str] = []

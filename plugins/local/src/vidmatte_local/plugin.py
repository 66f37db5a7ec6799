"""Entry point of vidmatte-local: registers the ``local`` backend.

Importing this module is cheap (no mediapipe, av or numpy): ``vidmatte
backends`` lists backends without loading models.
"""

from __future__ import annotations

import vidmatte
from vidmatte import BackendContext, BackendSpec, Capabilities, InputMode, MattingBackend
from vidmatte.hookspecs import hookimpl

__all__ = ["CAPABILITIES", "vidmatte_register_backends"]

CAPABILITIES = Capabilities(
    input_modes=frozenset({InputMode.FILE, InputMode.BYTES}),
    outputs=frozenset(vidmatte.OutputFormat),
    native_output=vidmatte.OutputFormat.WEBM,
    cancel=True,
    local=True,
)
"""Every output format, produced directly (the artefact is already in the requested format)."""


def _factory(context: BackendContext) -> MattingBackend:
    from vidmatte_local._backend import LocalBackend

    return LocalBackend(context)


@hookimpl
def vidmatte_register_backends() -> list[BackendSpec]:
    """The offline ``local`` backend: the default when nothing is configured."""
    return [
        BackendSpec(
            name="local",
            factory=_factory,
            summary="offline: MediaPipe person matting, or static-camera background modelling; free",
            capabilities=CAPABILITIES,
            needs_key=False,
            priority=100,
        )
    ]

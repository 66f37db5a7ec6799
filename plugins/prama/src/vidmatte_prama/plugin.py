"""The ``prama`` backend as a vidmatte plugin (entry point ``vidmatte: prama``)."""

from __future__ import annotations

from vidmatte import BackendContext, BackendSpec, Capabilities, InputMode, MattingBackend, hookimpl
from vidmatte_prama._matter import BACKEND_NAME, PramaMatter
from vidmatte_prama._settings import API_KEY_ENV, BASE_URL_ENV, load_settings

__all__ = ["CAPABILITIES", "create_backend", "create_matter", "vidmatte_register_backends"]

CAPABILITIES = Capabilities(
    input_modes=frozenset({InputMode.FILE, InputMode.BYTES}),
    cancel=True,
    # Frames already matted were paid for, whatever becomes of the job.
    failed_jobs_charged=True,
    cancelled_jobs_charged=True,
)
"""What the frame pipeline offers over Prama: every output format, from local files or bytes."""


def create_matter(context: BackendContext) -> PramaMatter:
    """A :class:`PramaMatter` configured from ``context`` (settings, environment, transport, clock)."""
    settings = load_settings(context.settings, context.env)
    return PramaMatter(settings, transport=context.transport, clock=context.clock)


def create_backend(context: BackendContext) -> MattingBackend:
    """The ``prama`` :class:`vidmatte.MattingBackend`: the frame pipeline driving a :class:`PramaMatter`."""
    from vidmatte.frames import frame_backend  # type: ignore[import-not-found,unused-ignore]

    backend: MattingBackend = frame_backend(create_matter(context), context, capabilities=CAPABILITIES)
    return backend


@hookimpl
def vidmatte_register_backends() -> list[BackendSpec]:
    """Register ``prama``."""
    return [
        BackendSpec(
            name=BACKEND_NAME,
            factory=create_backend,
            summary=(
                "Prama Labs image API (BackgroundErase/BEN), your own key: video by frame fan-out "
                "(paid per image; set price_per_image, USD 0.01 assumed)"
            ),
            capabilities=CAPABILITIES,
            secret_settings=("api_key",),
            env_vars=(API_KEY_ENV, BASE_URL_ENV),
            needs_key=True,
        )
    ]

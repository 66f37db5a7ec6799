"""The entry point: registers the ``falqueue`` backend with vidmatte."""

from __future__ import annotations

from vidmatte import BackendContext, BackendSpec, MattingBackend
from vidmatte.hookspecs import hookimpl
from vidmatte_falqueue._backend import CAPABILITIES, FalQueueBackend
from vidmatte_falqueue._settings import KEY_ENV, load

__all__ = ["make_backend", "vidmatte_register_backends"]


def make_backend(context: BackendContext) -> MattingBackend:
    """Build the backend from the context vidmatte hands over (settings, env, transport)."""
    return FalQueueBackend(load(context.settings, context.env), context)


@hookimpl
def vidmatte_register_backends() -> list[BackendSpec]:
    """The one backend this plugin provides."""
    return [
        BackendSpec(
            name="falqueue",
            factory=make_backend,
            summary="fal-style queue API (submit, poll status, fetch result)",
            capabilities=CAPABILITIES,
            secret_settings=("api_key",),
            env_vars=(KEY_ENV,),
            needs_key=True,
        )
    ]

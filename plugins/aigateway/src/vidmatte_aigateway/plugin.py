"""Registers the ``aigateway`` backend through the ``vidmatte`` entry point."""

from __future__ import annotations

from vidmatte.contract import BackendContext, BackendSpec, MattingBackend
from vidmatte.hookspecs import hookimpl
from vidmatte_aigateway._backend import NAME, AigatewayBackend, static_capabilities
from vidmatte_aigateway._settings import API_KEY_ENV, BASE_URL_ENV, MEDIA_URL_ENV, load_settings

__all__ = ["make_backend", "vidmatte_register_backends"]


def make_backend(context: BackendContext) -> MattingBackend:
    """Build the backend from ``[backends.aigateway]`` and the environment in ``context``."""
    return AigatewayBackend(load_settings(context.settings, context.env), context)


@hookimpl
def vidmatte_register_backends() -> list[BackendSpec]:
    """The AIgateway backend for ``prama-labs/ben-v2-video``."""
    return [
        BackendSpec(
            name=NAME,
            factory=make_backend,
            summary="AIgateway: Prama Labs Ben v2 video (paid, USD 0.001 per video second)",
            capabilities=static_capabilities(),
            secret_settings=("api_key",),
            env_vars=(API_KEY_ENV, BASE_URL_ENV, MEDIA_URL_ENV),
            needs_key=True,
        )
    ]

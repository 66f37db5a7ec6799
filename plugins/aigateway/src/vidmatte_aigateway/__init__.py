"""vidmatte backend for AIgateway's ``prama-labs/ben-v2-video`` (Ben v2 video background removal).

Installed, it registers the ``aigateway`` backend through the ``vidmatte``
entry point.  Configure it with ``AIGATEWAY_API_KEY`` (and optionally
``[backends.aigateway]`` in ``vidmatte.toml``: see :class:`AigatewaySettings`).

Also here: :mod:`vidmatte_aigateway.webhooks` (signature verification),
:mod:`vidmatte_aigateway.emulator` (a local gateway for tests and demos),
:mod:`vidmatte_aigateway.testing` (recorded replay scenarios) and
:mod:`vidmatte_aigateway.record` (records them, from the emulator or the live service).
"""

from vidmatte_aigateway._backend import NAME, AigatewayBackend, static_capabilities
from vidmatte_aigateway._parse import STATES, job_cost, parse_job, result_fields
from vidmatte_aigateway._schema import pick_input_field
from vidmatte_aigateway._settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MEDIA_URL,
    DEFAULT_MODEL,
    MEDIA_URL_ENV,
    AigatewaySettings,
    load_settings,
)
from vidmatte_aigateway.webhooks import WebhookVerificationError, sign_webhook, verify_webhook

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MEDIA_URL",
    "DEFAULT_MODEL",
    "MEDIA_URL_ENV",
    "NAME",
    "STATES",
    "AigatewayBackend",
    "AigatewaySettings",
    "WebhookVerificationError",
    "job_cost",
    "load_settings",
    "parse_job",
    "pick_input_field",
    "result_fields",
    "sign_webhook",
    "static_capabilities",
    "verify_webhook",
]

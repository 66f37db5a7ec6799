"""Where each backend's contract subject comes from.

Every subject is the plugin's own public helper (``vidmatte_NAME.testing``),
exactly as a third party would run the suite; an adapter here fills any gap
until the plugin ships one, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from vidmatte.contracts import BackendSubject


def from_plugin_helper(module: str) -> BackendSubject:
    """``module.contract_subject()``: the subject a plugin publishes."""
    subject: BackendSubject = import_module(module).contract_subject()
    return subject


def falqueue() -> BackendSubject:
    """The example third-party plugin."""
    return from_plugin_helper("vidmatte_falqueue.testing")


def prama() -> BackendSubject:
    """Prama direct: a frame backend (group ``frames``)."""
    return from_plugin_helper("vidmatte_prama.testing")


def aigateway() -> BackendSubject:
    """AIgateway Ben v2: a remote job backend."""
    return from_plugin_helper("vidmatte_aigateway.testing")


def local() -> BackendSubject:
    """The offline engine: no HTTP, so only the transport-independent groups."""
    return from_plugin_helper("vidmatte_local.testing")


SUBJECTS: dict[str, Callable[[], BackendSubject]] = {
    "aigateway": aigateway,
    "falqueue": falqueue,
    "local": local,
    "prama": prama,
}
"""Backend name -> how to build its subject."""

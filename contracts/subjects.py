"""Where each backend's contract subject comes from.

Every subject is the plugin's own public helper (``vidmatte_NAME.testing``),
exactly as a third party would run the suite; an adapter here fills any gap
until the plugin ships one, and says so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import attrs

from vidmatte import MattingRequest, OutputFormat, OutputSpec, Source
from vidmatte.contracts import BackendSubject, Group, Scenario, ScenarioSet


def from_plugin_helper(module: str) -> BackendSubject:
    """``module.contract_subject()``: the subject a plugin publishes."""
    subject: BackendSubject = import_module(module).contract_subject()
    return subject


def falqueue() -> BackendSubject:
    """The example third-party plugin."""
    return from_plugin_helper("vidmatte_falqueue.testing")


def prama() -> BackendSubject:
    """Prama direct: a frame backend (group ``frames``), and its job contract through the frame pipeline.

    The plugin's subject declares the frame group; the job-level groups are
    added here with one scenario style for all of them: ``frame_ok``'s
    recorded answer repeating for every frame of a small local clip.
    """
    subject = from_plugin_helper("vidmatte_prama.testing")
    if Group.CORE in subject.groups or subject.scenarios is None:
        return subject
    frame_ok = subject.scenarios.get("frame_ok")
    if frame_ok is None:
        return subject
    every_frame = tuple(attrs.evolve(e, repeat=True) for e in frame_ok.exchanges)
    jobs = {
        name: Scenario(name=name, exchanges=every_frame, description="frame_ok, answering every frame")
        for name in ("job_succeeds", "cancel_accepted", "cancel_already_terminal")
    }
    return attrs.evolve(
        subject,
        scenarios=ScenarioSet({**subject.scenarios.scenarios, **jobs}),
        groups=subject.groups | {Group.CORE, Group.SYNC},
        request=_local_request,
        virtual_time=False,
        job_timeout=120.0,
        deviations=dict(subject.deviations),
    )


def aigateway() -> BackendSubject:
    """AIgateway Ben v2: a remote job backend (adapted recordings until its helper has a subject)."""
    from vidmatte_aigateway import testing

    if hasattr(testing, "contract_subject"):
        return from_plugin_helper("vidmatte_aigateway.testing")
    from aigateway_adapter import aigateway_subject

    return aigateway_subject()


def local() -> BackendSubject:
    """The offline engine: no HTTP, so only the transport-independent groups (real time: it computes)."""
    try:
        return from_plugin_helper("vidmatte_local.testing")
    except (ImportError, AttributeError):
        pass
    # No helper published yet: describe it here from its registered spec.
    if importlib.util.find_spec("vidmatte_local._backend") is None:
        raise ImportError("vidmatte_local has no backend module yet")
    from vidmatte_local.plugin import vidmatte_register_backends

    (spec,) = vidmatte_register_backends()
    return BackendSubject(
        spec=spec,
        scenarios=None,
        groups=frozenset({Group.CORE, Group.SYNC}),
        request=_local_request,
        idempotency_header=None,
        virtual_time=False,
        job_timeout=120.0,
    )


def _local_request(folder: Path) -> MattingRequest:
    """A one-second 96x64 sample clip, probed: small enough to matte in a moment."""
    from vidmatte.media import make_sample_clip, probe

    clip = make_sample_clip(folder / "clip.mp4", seconds=1.0, fps=8, size=(96, 64), audio=False)
    return MattingRequest(
        source=Source(path=str(clip)),
        output=OutputSpec(format=OutputFormat.WEBM, keep_audio=False),
        media=probe(clip),
    )


SUBJECTS: dict[str, Callable[[], BackendSubject]] = {
    "aigateway": aigateway,
    "falqueue": falqueue,
    "local": local,
    "prama": prama,
}
"""Backend name -> how to build its subject."""

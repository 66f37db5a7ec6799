"""Finding the input-video field in a model schema (``GET /v1/models/{id}/schema``).

The schema's shape is undocumented (GUESS: JSON Schema, at the top level or
under ``input``/``input_schema``/``parameters``/``schema``), so this looks
for ``properties`` wherever they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PREFERRED_FIELDS", "pick_input_field"]

PREFERRED_FIELDS = ("video_url", "video", "input_video", "input_video_url", "source_url", "url")
"""Names tried in order; what fal, Bria and others call a video input."""

_DEFAULT = "video_url"


def _properties(schema: object, depth: int = 0) -> list[Mapping[str, Any]]:
    if not isinstance(schema, Mapping) or depth > 4:
        return []
    found: list[Mapping[str, Any]] = []
    props = schema.get("properties")
    if isinstance(props, Mapping):
        found.append(props)
    for key in ("input", "input_schema", "parameters", "schema", "request", "body"):
        found.extend(_properties(schema.get(key), depth + 1))
    return found


def pick_input_field(schema: object) -> str:
    """The name of the field carrying the input video URL (``video_url`` when nothing says)."""
    names: list[str] = []
    for props in _properties(schema):
        names.extend(str(name) for name in props)
    for preferred in PREFERRED_FIELDS:
        if preferred in names:
            return preferred
    videoish = [n for n in names if "video" in n.lower() and "output" not in n.lower()]
    return videoish[0] if videoish else _DEFAULT

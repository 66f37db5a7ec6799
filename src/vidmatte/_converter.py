"""The project's own cattrs converter (never cattrs' global one)."""

from __future__ import annotations

import base64
from decimal import Decimal

import cattrs
from cattrs.preconf.json import make_converter

__all__ = ["converter", "describe_structure_error"]

converter = make_converter(forbid_extra_keys=True)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda value, _: Decimal(str(value)))
converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
converter.register_structure_hook(bytes, lambda value, _: base64.b64decode(value))


def describe_structure_error(error: Exception, where: str) -> str:
    """One line naming the offending key(s) of a failed structuring."""
    if isinstance(error, cattrs.BaseValidationError):
        lines = cattrs.transform_error(error, path=where)
        return "; ".join(lines)
    return f"{where}: {error}"

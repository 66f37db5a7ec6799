"""vidmatte backend for fal-style queue APIs.

``FalQueueBackend`` implements :class:`vidmatte.MattingBackend`; the plugin
module :mod:`vidmatte_falqueue.plugin` registers it through the ``vidmatte``
entry-point group; :mod:`vidmatte_falqueue.testing` describes it to the
vidmatte contract suite.
"""

from vidmatte_falqueue._backend import CAPABILITIES, FalQueueBackend
from vidmatte_falqueue._settings import FalQueueSettings

__all__ = ["CAPABILITIES", "FalQueueBackend", "FalQueueSettings"]

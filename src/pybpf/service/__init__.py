"""The execution context as a service: `pybpfd` (the daemon) and `connect()` (its client).

See docs/daemon.md for the protocol, lifetimes and access rules. The
client's names are imported on first use, so that `pybpf.service.paths`
(what the command line needs first) does not import the client, which
imports the maps and the loader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import (
        Client,
        RemoteLink,
        RemoteMap,
        RemoteObject,
        RemoteProgram,
        ServiceError,
        connect,
    )

__all__ = [
    "Client",
    "RemoteLink",
    "RemoteMap",
    "RemoteObject",
    "RemoteProgram",
    "ServiceError",
    "connect",
]


def __getattr__(name: str) -> Any:
    """The client's public names, imported on first use."""
    if name in __all__:
        value = getattr(importlib.import_module(".client", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

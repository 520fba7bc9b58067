"""The execution context as a service: `pybpfd` (the daemon) and `connect()` (its client).

See docs/daemon.md for the protocol, lifetimes and access rules. The
client's names are imported on first use, so that `pybpf.service.paths`
(what the command line needs first) does not import the client, which
imports the maps and the loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes

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


__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, ".client"), globals())
"""The client's public names, imported on first use."""

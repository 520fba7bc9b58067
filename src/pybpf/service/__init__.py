"""The execution context as a service: `pybpfd` (the daemon) and `connect()` (its client).

See docs/daemon.md for the protocol, lifetimes and access rules.
"""

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

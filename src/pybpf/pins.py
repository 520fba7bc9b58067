"""Pinning in embedded mode: a bpffs-like path namespace for this process's maps, programs, links.

`Map.pin(path)`, `Program.pin(path)`, `Link.pin(path)` and `Object.pin(dir)`
(every map and loaded program as `dir/<name>`, as libbpf's
`bpf_object__pin`) put a handle at a path; `get(path)` finds it again,
`unpin(path)` removes it. As with bpffs, a pinned thing outlives its
object: closing the object leaves pinned maps, programs and links alive
(and attached), and they are closed when unpinned. Paths are absolute,
without `..` (`/sys/fs/bpf/...` style, as eBPF for Windows accepts them).

Handles from the daemon (`pybpf.connect()`) pin in the daemon instead,
where pins outlive this process (docs/daemon.md); this namespace lasts as
long as the process.
"""

from __future__ import annotations

import errno
import posixpath
import threading
from typing import Any

from .errors import PybpfError

MAX_PATH = 4096

__all__ = ["PinError", "get", "is_pinned", "normal_path", "pin", "pins", "unpin"]


class PinError(PybpfError):
    """A pin that cannot be made, found or removed; `errno` as bpf() would give it."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.errno = code


_lock = threading.Lock()
_pins: dict[str, Any] = {}


def normal_path(path: str) -> str:
    """`path` normalised; ValueError when it is not absolute, holds NUL or `..`, or is `/`."""
    path = str(path)
    if not path.startswith("/") or "\0" in path or len(path) > MAX_PATH:
        raise ValueError(f"{path[:80]!r} is not an absolute path")
    if ".." in path.split("/") or posixpath.normpath(path) == "/":
        raise ValueError(f"{path[:80]!r} is not a usable path")
    return posixpath.normpath(path)


def _checked(path: str) -> str:
    try:
        return normal_path(path)
    except ValueError as error:
        raise PinError(errno.EINVAL, str(error)) from None


def pin(path: str, handle: Any) -> None:
    """Put `handle` (a map, program or link) at `path` (EEXIST if taken)."""
    path = _checked(path)
    with _lock:
        if path in _pins:
            raise PinError(errno.EEXIST, f"{path}: already pinned")
        _pins[path] = handle


def get(path: str) -> Any:
    """The handle pinned at `path` (ENOENT if none)."""
    path = _checked(path)
    with _lock:
        handle = _pins.get(path)
    if handle is None:
        raise PinError(errno.ENOENT, f"{path}: nothing pinned there")
    return handle


def unpin(path: str) -> None:
    """Remove the pin at `path`; what it kept alive after its object closed is closed now."""
    path = _checked(path)
    with _lock:
        handle = _pins.pop(path, None)
        still = handle is not None and any(h is handle for h in _pins.values())
    if handle is None:
        raise PinError(errno.ENOENT, f"{path}: nothing pinned there")
    if not still and _object_closed(handle):
        _close(handle)


def is_pinned(handle: Any) -> bool:
    """Whether `handle` is pinned anywhere in this process."""
    with _lock:
        return any(h is handle for h in _pins.values())


def pins() -> dict[str, Any]:
    """Every pin: path → handle."""
    with _lock:
        return dict(_pins)


def _owner(handle: Any) -> Any:
    """The object a handle belongs to (None: a standalone map)."""
    from .link import Link
    from .program import Program

    if isinstance(handle, Link):
        return handle.program.object
    if isinstance(handle, Program):
        return handle.object
    return getattr(handle, "owner", None)  # a map: set by its object


def _object_closed(handle: Any) -> bool:
    owner = _owner(handle)
    return owner is not None and owner.closed


def _close(handle: Any) -> None:
    """Close what a closed object left alive for its pin."""
    from .runtime.maps import Map

    if isinstance(handle, Map):
        handle.owner.context.remove_map(handle)
    handle.close()

"""Entering a network namespace for a moment, on the calling thread only.

A live hook opens its sockets and TAP devices inside a namespace given by
path (`/run/netns/NAME`, `/proc/PID/ns/net`) and then runs from any thread:
a socket stays in the namespace it was created in. `setns(2)` moves only
the calling thread, so the rest of the process never leaves its own
namespace; the thread is moved back on leaving the block. Python 3.11 has
no `os.setns`, hence ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InterfaceError

__all__ = ["in_netns"]

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise InterfaceError(f"cannot enter network namespace {what}: {os.strerror(code)}")


@contextmanager
def in_netns(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Run the block in the network namespace at `path` (None: stay where we are)."""
    if path is None:
        yield
        return
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise InterfaceError(f"network namespace {path}: {error.strerror}") from None
    home = os.open(
        f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY | os.O_CLOEXEC
    )
    try:
        _setns(target, str(path))
        try:
            yield
        finally:
            _setns(home, "of this thread")
    finally:
        os.close(target)
        os.close(home)

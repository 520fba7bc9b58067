"""`CallerRecord`: the caller of a hooked call, in native memory for compiled programs.

A socket hook deciding a call sets the calling task and the call's socket
on the programs' execution context (`ExecutionContext.set_caller`): the
Python helpers read them there (`current_task`, `caller_socket`), and
JIT-compiled programs read this record, whose address every run's
`RunState.caller` holds, so that `bpf_get_current_pid_tgid`,
`bpf_get_current_uid_gid`, `bpf_get_socket_cookie` and
`bpf_get_netns_cookie` cost a load instead of a call into Python
(`engine.jit.native_caller`). `flags` says which half is valid; with a bit
clear the compiled program asks the Python helper, which answers from the
host thread as without a hook.
"""

from __future__ import annotations

import ctypes
from typing import Any

from .task import CurrentTask

__all__ = ["CALLER_SOCKET", "CALLER_TASK", "INIT_NET_COOKIE", "CallerRecord", "fill"]

CALLER_TASK = 1
"""`CallerRecord.flags`: `pid_tgid` and `uid_gid` are the caller's."""
CALLER_SOCKET = 2
"""`CallerRecord.flags`: `socket_cookie` and `netns_cookie` are the call's socket's."""


class CallerRecord(ctypes.Structure):
    """The native view of `ExecutionContext.current_task` and `.caller_socket`."""

    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("pid_tgid", ctypes.c_uint64),
        ("uid_gid", ctypes.c_uint64),
        ("socket_cookie", ctypes.c_uint64),
        ("netns_cookie", ctypes.c_uint64),
    ]


_M64 = (1 << 64) - 1
INIT_NET_COOKIE = 1
"""`bpf_get_netns_cookie` without a namespace: init_net's cookie, as the kernel's."""


def fill(record: CallerRecord, task: CurrentTask | None, socket: Any) -> None:
    """Make `record` say what `task` and `socket` (a `CallerSocket`, or None) say."""
    flags = 0
    if task is not None:
        record.pid_tgid, record.uid_gid = task.pid_tgid, task.uid_gid
        flags |= CALLER_TASK
    if socket is not None:
        record.socket_cookie = socket.cookie & _M64
        # the helper's answer for a socket whose namespace cookie is unknown: init_net's
        record.netns_cookie = socket.netns_cookie & _M64 or INIT_NET_COOKIE
        flags |= CALLER_SOCKET
    record.flags = flags

"""`CurrentTask`: the process a program sees as `current` (pid, uid, comm, task, stacks).

Tracing helpers (`bpf_get_current_pid_tgid`, `_uid_gid`, `_comm`, `_task`,
`bpf_get_stack`) answer about the task that was running when the program
fired. In pybpf that is the host process by default (`CurrentTask.host()`:
the calling thread's id as pid, the process id as tgid, the real uid/gid,
the thread's name as comm), or the values a test or application sets on
the execution context (`obj.context.current_task = CurrentTask(...)`).

What the kernel keeps only in its own memory is synthetic: the task
pointer `bpf_get_current_task` returns is the address of a read-only
region holding `task_struct` (zeros unless given), which programs read
with `bpf_probe_read_kernel`; the call stacks `bpf_get_stack` copies are
the instruction pointers given as `kernel_stack` / `user_stack` (empty by
default).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

__all__ = ["TASK_COMM_LEN", "TASK_STRUCT_SIZE", "CurrentTask"]

TASK_COMM_LEN = 16
"""Bytes of `task_struct.comm`, the terminating NUL included."""

TASK_STRUCT_SIZE = 16384
"""Bytes of the synthetic `task_struct` region (at least; more when a bigger image is given)."""

_M32 = 0xFFFFFFFF
_thread_names: dict[int, bytes] = {}


def _comm_of(tid: int) -> bytes:
    """The kernel's comm of thread `tid` of this process (cached), or the program name."""
    name = _thread_names.get(tid)
    if name is None:
        try:
            with open(f"/proc/self/task/{tid}/comm", "rb") as file:
                name = file.read().rstrip(b"\n")
        except OSError:  # no procfs (macOS, Windows): what Linux would name the process
            name = os.path.basename(sys.executable or "python").encode()
        name = _thread_names[tid] = name[: TASK_COMM_LEN - 1]
    return name


@dataclass(frozen=True, slots=True)
class CurrentTask:
    """The `current` task of a run: ids, credentials, name, memory image and stacks.

    `pid` is the kernel's pid (a thread id), `tgid` the process id, `uid` /
    `gid` the credentials `bpf_get_current_uid_gid` reports, `comm` the task
    name (cut to 15 bytes), `task_struct` the bytes of the synthetic task
    the task pointer addresses (zero-filled to `TASK_STRUCT_SIZE`),
    `kernel_stack` / `user_stack` the return addresses `bpf_get_stack`
    copies, innermost first.
    """

    pid: int
    tgid: int
    uid: int = 0
    gid: int = 0
    comm: bytes = b""
    task_struct: bytes = b""
    kernel_stack: tuple[int, ...] = ()
    user_stack: tuple[int, ...] = ()

    @classmethod
    def host(cls) -> CurrentTask:
        """The calling thread of this process, as the kernel would describe it."""
        tid = threading.get_native_id()
        uid = os.getuid() if hasattr(os, "getuid") else 0
        gid = os.getgid() if hasattr(os, "getgid") else 0
        return cls(tid, os.getpid(), uid, gid, _comm_of(tid))

    @property
    def pid_tgid(self) -> int:
        """`bpf_get_current_pid_tgid`'s value: tgid << 32 | pid."""
        return (self.tgid & _M32) << 32 | (self.pid & _M32)

    @property
    def uid_gid(self) -> int:
        """`bpf_get_current_uid_gid`'s value: gid << 32 | uid."""
        return (self.gid & _M32) << 32 | (self.uid & _M32)

"""Seccomp user notification over the kernel interface (ctypes): the filter, the listener.

A supervised command runs under a classic-BPF seccomp filter that turns the
socket calls the socket hook decides into user notifications
(`SECCOMP_RET_USER_NOTIF`): the calling thread blocks until the supervisor
answers through the listener fd (`SECCOMP_IOCTL_NOTIF_RECV` /
`_SEND`). This module holds the kernel's numbers and structs, the filter
(`socket_filter`) and the listener calls; `hooks/sock_supervisor.py` makes
the decisions and `hooks/seccomp_launch.py` installs the filter before the
command starts.

Only calls that may name an address notify: `bind`, `connect`, `sendmsg`,
and `sendto` with a non-NULL address (glibc's `send` is `sendto` with
NULL: it never reaches the supervisor). Everything else, and every call of
another architecture's ABI (a 32-bit program, x32), passes through the
filter untouched.

Kernel versions: the listener (`SECCOMP_FILTER_FLAG_NEW_LISTENER`) is Linux
5.0, `SECCOMP_USER_NOTIF_FLAG_CONTINUE` 5.5, `pidfd_getfd` (the supervisor
acts on a duplicate of the target's socket) 5.6.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct
from dataclasses import dataclass

__all__ = [
    "MIN_KERNEL",
    "Notification",
    "SYSCALLS",
    "id_valid",
    "install_listener",
    "pidfd_getfd",
    "receive",
    "respond",
    "respond_continue",
    "socket_filter",
    "unsupported_reason",
]

MIN_KERNEL = (5, 6)
"""The oldest kernel with all of it: the listener (5.0), CONTINUE (5.5), pidfd_getfd (5.6)."""

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
PR_SET_NO_NEW_PRIVS = 38

# ioctls on the listener: _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, resp),
# _IOW('!', 2, __u64)
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102

_ARCHES = {
    # machine: (AUDIT_ARCH_*, seccomp syscall, {name: number})
    "x86_64": (
        0xC000003E,
        317,
        {"bind": 49, "connect": 42, "sendto": 44, "sendmsg": 46},
    ),
    "aarch64": (
        0xC00000B7,
        277,
        {"bind": 200, "connect": 203, "sendto": 206, "sendmsg": 211},
    ),
}
_PIDFD_GETFD = 438  # the same on every architecture (generic syscall table)

_machine = platform.machine()
AUDIT_ARCH, _SECCOMP_NR, SYSCALLS = _ARCHES.get(_machine, (0, 0, {}))
SYSCALL_NAMES = {number: name for name, number in SYSCALLS.items()}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

_NOTIF = struct.Struct("<QII iI Q 6Q")  # id, pid, flags, then struct seccomp_data
_RESP = struct.Struct("<QqiI")  # id, val, error, flags


@dataclass(frozen=True)
class Notification:
    """One intercepted call: its id, the calling thread, the syscall and its arguments."""

    id: int
    pid: int
    nr: int
    args: tuple[int, ...]

    @property
    def syscall(self) -> str:
        """The syscall's name (bind, connect, sendto, sendmsg)."""
        return SYSCALL_NAMES.get(self.nr, f"syscall {self.nr}")


def unsupported_reason() -> str | None:
    """Why this machine cannot supervise socket calls, or None."""
    if not SYSCALLS:
        return f"seccomp user notification is supported here on x86_64 and aarch64, not {_machine}"
    release = platform.release()
    try:
        version = tuple(int(part) for part in release.split("-")[0].split(".")[:2])
    except ValueError:
        return None
    if version < MIN_KERNEL:
        return (
            f"seccomp user notification with pidfd_getfd needs Linux"
            f" {MIN_KERNEL[0]}.{MIN_KERNEL[1]} or newer; this kernel is {release}"
        )
    return None


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06


def socket_filter() -> bytes:
    """The classic-BPF program: notify bind/connect/sendmsg and sendto with an address
    (see the module docstring), allow everything else."""
    nr = SYSCALLS
    prog = [
        _stmt(_LD_W_ABS, 4),  # seccomp_data.arch
        _jump(_JEQ_K, AUDIT_ARCH, 1, 0),
        _stmt(_RET_K, SECCOMP_RET_ALLOW),  # another ABI: not ours to decide
        _stmt(_LD_W_ABS, 0),  # seccomp_data.nr
        _jump(_JEQ_K, nr["bind"], 4, 0),
        _jump(_JEQ_K, nr["connect"], 3, 0),
        _jump(_JEQ_K, nr["sendmsg"], 2, 0),
        _jump(_JEQ_K, nr["sendto"], 2, 0),
        _stmt(_RET_K, SECCOMP_RET_ALLOW),
        _stmt(_RET_K, SECCOMP_RET_USER_NOTIF),
        # sendto: notify only when dest_addr (args[4], at 16 + 4 * 8) is not NULL
        _stmt(_LD_W_ABS, 16 + 4 * 8),
        _jump(_JEQ_K, 0, 0, 2),
        _stmt(_LD_W_ABS, 16 + 4 * 8 + 4),
        _jump(_JEQ_K, 0, 1, 0),
        _stmt(_RET_K, SECCOMP_RET_USER_NOTIF),
        _stmt(_RET_K, SECCOMP_RET_ALLOW),
    ]
    return b"".join(prog)


def install_listener() -> int:
    """Install `socket_filter` on the calling thread (and what it execs and forks);
    return the listener fd. Sets no_new_privs when the caller lacks CAP_SYS_ADMIN."""
    code = socket_filter()
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("<HxxxxxxQ", len(code) // 8, ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))

    def attempt() -> int:
        return _libc.syscall(
            ctypes.c_long(_SECCOMP_NR),
            ctypes.c_long(SECCOMP_SET_MODE_FILTER),
            ctypes.c_long(SECCOMP_FILTER_FLAG_NEW_LISTENER),
            ctypes.c_void_p(ctypes.addressof(fprog_buffer)),  # a pointer, not a C int
        )

    fd = attempt()
    if fd < 0 and ctypes.get_errno() == errno.EACCES:
        # Without CAP_SYS_ADMIN the kernel wants no_new_privs first.
        _libc.prctl(
            PR_SET_NO_NEW_PRIVS,
            ctypes.c_ulong(1),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
        fd = attempt()
    if fd < 0:
        code_ = ctypes.get_errno()
        raise OSError(code_, f"seccomp(SET_MODE_FILTER, NEW_LISTENER): {os.strerror(code_)}")
    return fd


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A duplicate of file descriptor `target_fd` of the process of `pidfd` (OSError)."""
    fd = _libc.syscall(
        ctypes.c_long(_PIDFD_GETFD),
        ctypes.c_long(pidfd),
        ctypes.c_long(target_fd),
        ctypes.c_long(0),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return fd


def receive(listener: int) -> Notification:
    """The next notification (blocks; OSError ENOENT when the target died meanwhile)."""
    buffer = bytearray(_NOTIF.size)
    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buffer)
    fields = _NOTIF.unpack(buffer)
    return Notification(fields[0], fields[1], fields[3], tuple(fields[6:12]))


def respond(listener: int, notification_id: int, value: int = 0, error: int = 0) -> None:
    """Answer a notification: the call returns `value`, or fails with errno `error` (> 0).
    A target that died meanwhile (ENOENT) is no error."""
    resp = bytearray(_RESP.pack(notification_id, value, -error if error else 0, 0))
    try:
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def respond_continue(listener: int, notification_id: int) -> None:
    """Let the call go on in the kernel as made (only for calls no decision depends on)."""
    resp = bytearray(_RESP.pack(notification_id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE))
    try:
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def id_valid(listener: int, notification_id: int) -> bool:
    """Whether the notification's target still waits in that call (after reading its
    memory: its pid may otherwise have been reused)."""
    try:
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, struct.pack("<Q", notification_id))
    except OSError:
        return False
    return True


# -- the launcher: runs as a script (`python -I seccomp.py launch …`), standard library only


def _launch(argv: list[str]) -> int:
    """`launch W R -- COMMAND…`: install the filter, tell the supervisor the listener's
    fd number through fd W, wait for its go on fd R, then exec COMMAND (an exec failure
    is written to W). Run as a fresh interpreter so that no thread of the supervisor's
    process is forked."""
    write_fd, read_fd = int(argv[0]), int(argv[1])
    command = argv[3:]
    try:
        listener = install_listener()
    except OSError as error:
        os.write(write_fd, f"error {error.errno} {error.strerror}\n".encode())
        return 126
    os.write(write_fd, f"listener {listener}\n".encode())
    if os.read(read_fd, 1) != b"g":  # the supervisor gave up (it took the listener or not)
        return 126
    os.close(read_fd)
    os.close(listener)  # the supervisor holds its own copy now
    os.set_inheritable(write_fd, False)  # closes on a successful exec: EOF tells success
    try:
        os.execvp(command[0], command)
    except OSError as error:
        os.write(write_fd, f"exec {error.errno} {error.strerror}\n".encode())
    return 127


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 4 and sys.argv[1] == "launch" and sys.argv[4] == "--":
        raise SystemExit(_launch(sys.argv[2:]))
    raise SystemExit("usage: seccomp.py launch WRITE_FD READ_FD -- COMMAND [ARG…]")

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
`sendmmsg`, and `sendto` with a non-NULL address (glibc's `send` is
`sendto` with NULL: it never reaches the supervisor). The same calls made
through another ABI of the kernel (a 32-bit program's `socketcall` or
direct socket calls, x32) fail with EPERM: the supervisor cannot decide
them, and letting them through would let a 32-bit binary escape the
policy. Everything else passes through the filter untouched.

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
    "assemble",
    "id_valid",
    "install_filter",
    "install_listener",
    "pidfd_getfd",
    "receive",
    "respond",
    "respond_continue",
    "set_no_new_privs",
    "set_sync_wake_up",
    "syscall_fd",
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
SECCOMP_IOCTL_NOTIF_SET_FLAGS = 0x40082104  # _IOW('!', 4, __u64), Linux 6.6
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1


@dataclass(frozen=True)
class _Arch:
    """A machine's numbers: its audit arch, seccomp's syscall number, the socket calls the
    supervisor decides, and the socket calls of other ABIs the same kernel runs (refused)."""

    audit: int
    seccomp_nr: int
    calls: dict[str, int]
    # audit arch of another ABI → its bind/connect/sendto/sendmsg/sendmmsg (and socketcall)
    other_abis: dict[int, tuple[int, ...]]
    # x32 (x86_64's 32-bit pointer ABI): the native arch with bit 30 set in the number
    x32_calls: tuple[int, ...] = ()


_X32 = 0x40000000
_ARCHES = {
    "x86_64": _Arch(
        0xC000003E,
        317,
        {"bind": 49, "connect": 42, "sendto": 44, "sendmsg": 46, "sendmmsg": 307},
        {0x40000003: (102, 361, 362, 369, 370, 345)},  # i386: socketcall, the direct calls
        tuple(_X32 | n for n in (49, 42, 44, 518, 538)),
    ),
    "aarch64": _Arch(
        0xC00000B7,
        277,
        {"bind": 200, "connect": 203, "sendto": 206, "sendmsg": 211, "sendmmsg": 269},
        {0x40000028: (282, 283, 290, 296, 374)},  # 32-bit ARM (EABI)
    ),
}
PIDFD_OPEN, _PIDFD_GETFD = 434, 438  # the same on every architecture (generic table)

_machine = platform.machine()
_ARCH = _ARCHES.get(_machine)
AUDIT_ARCH, _SECCOMP_NR = (_ARCH.audit, _ARCH.seccomp_nr) if _ARCH else (0, 0)
SYSCALLS: dict[str, int] = dict(_ARCH.calls) if _ARCH else {}
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


_LD_W_ABS, _JEQ_K, _JSET_K, _RET_K = 0x20, 0x15, 0x45, 0x06
SECCOMP_RET_ERRNO = 0x00050000
_NR, _ARCH_OFFSET, _ARG4 = 0, 4, 16 + 4 * 8  # offsets in struct seccomp_data


def assemble(program: list[tuple]) -> bytes:
    """Classic BPF from (label,) marks, ("ld", offset), ("ret", value),
    ("jeq", k, label_if_equal, label_else) and ("jset", k, label_if_any_bit, label_else)
    (None: the next instruction). Labels must follow their jumps, as in any seccomp
    filter."""
    labels, count = {}, 0
    for item in program:
        if len(item) == 1:
            labels[item[0]] = count
        else:
            count += 1
    out, pc = [], 0
    for item in program:
        if len(item) == 1:
            continue
        pc += 1
        if item[0] == "ld":
            out.append(struct.pack("<HBBI", _LD_W_ABS, 0, 0, item[1]))
        elif item[0] == "ret":
            out.append(struct.pack("<HBBI", _RET_K, 0, 0, item[1]))
        else:
            kind, k, yes, no = item
            jt = 0 if yes is None else labels[yes] - pc
            jf = 0 if no is None else labels[no] - pc
            code = _JEQ_K if kind == "jeq" else _JSET_K
            out.append(struct.pack("<HBBI", code, jt, jf, k))
    return b"".join(out)


def socket_filter() -> bytes:
    """The classic-BPF program (see the module docstring): notify bind, connect, sendmsg,
    sendmmsg and sendto with an address; refuse (EPERM) the socket calls of another ABI
    (32-bit programs, x32), which the supervisor cannot decide; allow everything else."""
    assert _ARCH is not None
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    program: list[tuple] = [("ld", _ARCH_OFFSET), ("jeq", _ARCH.audit, "native", None)]
    for audit in _ARCH.other_abis:
        program.append(("jeq", audit, f"abi{audit:x}", None))
    program.append(("ret", SECCOMP_RET_ALLOW))
    for audit, numbers in _ARCH.other_abis.items():
        program += [(f"abi{audit:x}",), ("ld", _NR)]
        program += [("jeq", n, "deny", None) for n in numbers]
        program.append(("ret", SECCOMP_RET_ALLOW))
    program += [("native",), ("ld", _NR)]
    program += [("jeq", n, "deny", None) for n in _ARCH.x32_calls]
    for name in ("bind", "connect", "sendmsg", "sendmmsg"):
        program.append(("jeq", _ARCH.calls[name], "notify", None))
    program += [("jeq", _ARCH.calls["sendto"], None, "allow")]
    # sendto: notify only when dest_addr (args[4]) is not NULL (jumps go forward only)
    program += [("ld", _ARG4), ("jeq", 0, None, "notify")]
    program += [("ld", _ARG4 + 4), ("jeq", 0, "allow", "notify")]
    program += [("notify",), ("ret", SECCOMP_RET_USER_NOTIF), ("deny",), ("ret", deny)]
    program += [("allow",), ("ret", SECCOMP_RET_ALLOW)]
    return assemble(program)


def install_filter(code: bytes, flags: int = 0) -> int:
    """Install the classic-BPF filter `code` on the calling thread (and what it execs and
    forks); the syscall's result (a listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER).
    Sets no_new_privs when the caller lacks CAP_SYS_ADMIN (the kernel wants it then)."""
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("<HxxxxxxQ", len(code) // 8, ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))

    def attempt() -> int:
        return _libc.syscall(
            ctypes.c_long(_SECCOMP_NR),
            ctypes.c_long(SECCOMP_SET_MODE_FILTER),
            ctypes.c_long(flags),
            ctypes.c_void_p(ctypes.addressof(fprog_buffer)),  # a pointer, not a C int
        )

    result = attempt()
    if result < 0 and ctypes.get_errno() == errno.EACCES:
        set_no_new_privs()
        result = attempt()
    if result < 0:
        code_ = ctypes.get_errno()
        raise OSError(code_, f"seccomp(SET_MODE_FILTER): {os.strerror(code_)}")
    return result


def set_no_new_privs() -> None:
    """prctl(PR_SET_NO_NEW_PRIVS): execve can no longer grant privileges."""
    _libc.prctl(
        PR_SET_NO_NEW_PRIVS,
        ctypes.c_ulong(1),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )


def install_listener() -> int:
    """Install `socket_filter` on the calling thread (and what it execs and forks);
    return the listener fd."""
    return install_filter(socket_filter(), SECCOMP_FILTER_FLAG_NEW_LISTENER)


def set_sync_wake_up(listener: int) -> bool:
    """Ask the kernel to switch straight between the caller and the supervisor on one CPU
    (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, Linux 6.6): without it each call waits for
    the scheduler to wake the supervisor and then the caller, which on a small or
    virtual machine is most of a supervised call's cost (40 µs of 50 in a C supervisor
    here, 7 µs with it). Whether the kernel took it (older kernels: no, and no harm)."""
    try:
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
    except OSError:
        return False
    return True


def syscall_fd(number: int, *args: int) -> int:
    """A syscall that returns a file descriptor, with integer arguments (OSError)."""
    fd = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return fd


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A duplicate of file descriptor `target_fd` of the process (or thread) of `pidfd`."""
    return syscall_fd(_PIDFD_GETFD, pidfd, target_fd, 0)


def receive(listener: int) -> Notification:
    """The next notification (blocks; OSError ENOENT when the target died meanwhile)."""
    buffer = bytearray(_NOTIF.size)
    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buffer)
    fields = _NOTIF.unpack(buffer)
    return Notification(fields[0], fields[1], fields[3], tuple(fields[6:12]))


def _send(listener: int, response: bytes) -> None:
    """SECCOMP_IOCTL_NOTIF_SEND; a target that died meanwhile (ENOENT) is no error."""
    try:
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, bytearray(response))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def respond(listener: int, notification_id: int, value: int = 0, error: int = 0) -> None:
    """Answer a notification: the call returns `value`, or fails with errno `error` (> 0)."""
    _send(listener, _RESP.pack(notification_id, value, -error if error else 0, 0))


def respond_continue(listener: int, notification_id: int) -> None:
    """Let the call go on in the kernel as made (only for calls no decision depends on)."""
    _send(listener, _RESP.pack(notification_id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE))


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

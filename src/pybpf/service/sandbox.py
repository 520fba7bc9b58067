"""The verifier worker's confinement: no capabilities, no network, no writes, bounded memory.

`enter` is called by the worker once it has imported and warmed up all it
needs. It drops every capability (bounding set, then effective, permitted
and inheritable: a worker run by root keeps uid 0 for reading the files it
already could, but can no longer override permissions, trace, mount or
load kernel BPF), sets no_new_privs, and installs a seccomp filter that
allows only the system calls verification uses — reading, memory, time,
futexes, stat-like calls, opening files read-only, memfds for the maps of
the object being verified — and fails every other with EPERM: no socket,
no connect, no write-mode open, no execve, no fork or thread, no kill or
ptrace. `limits` are the resource limits the daemon sets when it starts
the worker (address space, CPU time, open files).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import resource

from ..hooks import seccomp

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
_NR, _ARCH_OFFSET = 0, 4
_ARG = 16  # offset of args[0] in struct seccomp_data; args are 8 bytes apart

# name: (x86_64, aarch64). The generic table (aarch64) has no open/stat/access/readlink.
ALLOWED: dict[str, tuple[int | None, int]] = {
    "read": (0, 63),
    "write": (1, 64),
    "readv": (19, 65),
    "writev": (20, 66),
    "pread64": (17, 67),
    "close": (3, 57),
    "fstat": (5, 80),
    "stat": (4, None),  # type: ignore[dict-item]
    "lstat": (6, None),  # type: ignore[dict-item]
    "newfstatat": (262, 79),
    "statx": (332, 291),
    "lseek": (8, 62),
    "mmap": (9, 222),
    "mprotect": (10, 226),
    "munmap": (11, 215),
    "mremap": (25, 216),
    "brk": (12, 214),
    "madvise": (28, 233),
    "rt_sigaction": (13, 134),
    "rt_sigprocmask": (14, 135),
    "rt_sigreturn": (15, 139),
    "sigaltstack": (131, 132),
    "ioctl": (16, 29),
    "futex": (202, 98),
    "sched_yield": (24, 124),
    "getpid": (39, 172),
    "gettid": (186, 178),
    "getuid": (102, 174),
    "geteuid": (107, 175),
    "getgid": (104, 176),
    "getegid": (108, 177),
    "clock_gettime": (228, 113),
    "clock_getres": (229, 114),
    "clock_nanosleep": (230, 115),
    "nanosleep": (35, 101),
    "gettimeofday": (96, 169),
    "getrandom": (318, 278),
    "exit": (60, 93),
    "exit_group": (231, 94),
    "set_robust_list": (273, 99),
    "rseq": (334, 293),
    "getcwd": (79, 17),
    "readlink": (89, None),  # type: ignore[dict-item]
    "readlinkat": (267, 78),
    "getdents64": (217, 61),
    "fcntl": (72, 25),
    "dup": (32, 23),
    "memfd_create": (319, 279),
    "ftruncate": (77, 46),
    "sysinfo": (99, 179),
    "sched_getaffinity": (204, 123),
    "prlimit64": (302, 261),
    "uname": (63, 160),
    "access": (21, None),  # type: ignore[dict-item]
    "faccessat": (269, 48),
    "faccessat2": (439, 439),
    "getrusage": (98, 165),
}
"""What verification needs once warmed up (checked by running the examples through it)."""

OPENS: dict[str, tuple[tuple[int | None, int], int]] = {
    "open": ((2, None), 1),  # type: ignore[dict-item]
    "openat": ((257, 56), 2),
}
"""Opening calls, and which argument holds the flags: allowed read-only only."""

WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC

PR_CAPBSET_DROP = 24
_CAP_LAST = 63
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAPSET = {"x86_64": 126, "aarch64": 91}


def _column() -> int:
    machine = platform.machine()
    if machine not in ("x86_64", "aarch64"):
        raise OSError(errno.ENOSYS, f"no seccomp table for {machine}")
    return 0 if machine == "x86_64" else 1


def worker_filter() -> bytes:
    """The classic-BPF program: allow `ALLOWED`, read-only `OPENS`, EPERM for the rest."""
    column = _column()
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    program: list[tuple] = [
        ("ld", _ARCH_OFFSET),
        ("jeq", seccomp.AUDIT_ARCH, None, "deny"),
        ("ld", _NR),
    ]
    numbers = sorted({pair[column] for pair in ALLOWED.values() if pair[column] is not None})
    program += [("jeq", number, "allow", None) for number in numbers]
    for name, (pair, _arg) in OPENS.items():
        number = pair[column]
        if number is not None:
            program.append(("jeq", number, f"open_{name}", None))
    program.append(("ret", deny))
    for name, (pair, arg) in OPENS.items():
        if pair[column] is None:
            continue
        # Flags are an int: the low 32 bits of the argument.
        program += [(f"open_{name}",), ("ld", _ARG + 8 * arg)]
        program += [("jset", WRITE_FLAGS, "deny", "allow")]
    program += [("deny",), ("ret", deny), ("allow",), ("ret", SECCOMP_RET_ALLOW)]
    return seccomp.assemble(program)


def drop_capabilities() -> None:
    """Empty the bounding set, then the effective, permitted and inheritable sets."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(_CAP_LAST + 1):
        libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)  # EINVAL past the last: fine
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    number = _CAPSET.get(platform.machine())
    if number is None or libc.syscall(ctypes.c_long(number), header, data) != 0:
        code = ctypes.get_errno()
        raise OSError(code, "capset: cannot drop capabilities")


def limits(pid: int, memory: int, cpu_seconds: int) -> None:
    """Set the worker's resource limits from the daemon (prlimit: no code between fork
    and exec in a threaded daemon)."""
    resource.prlimit(pid, resource.RLIMIT_AS, (memory, memory))
    resource.prlimit(pid, resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64))
    resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))


def enter() -> None:
    """Confine this process for good (see the module docstring)."""
    drop_capabilities()
    seccomp.set_no_new_privs()
    seccomp.install_filter(worker_filter())

"""The kernel's verdict on raw instructions, through the `bpf()` system call itself.

`kernel_verdict` (testing/verdicts.py) loads clang objects through libbpf;
the Linux load-path rules are easier to pin down with a handful of
assembled instructions, a program type and a few maps. `load_verdict`
creates the maps (`BPF_MAP_CREATE`; `frozen=True` maps get
`BPF_F_RDONLY_PROG`, their contents and `BPF_MAP_FREEZE`, as libbpf does
for `.rodata`), patches `lddw src=1 imm=i` / `lddw src=2 imm=i` with the
i-th map's fd, loads the program (`BPF_PROG_LOAD`, GPL, log level 1) and
returns `(accepted, reason, log)`, the reason being the log line that
explains a rejection (`verdicts.reason_line`).

Only for tests and tools run as root; `available()` says whether the
syscall works here (callers skip otherwise).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..isa.instruction import Instruction, encode
from .verdicts import reason_line

__all__ = ["RawMap", "available", "bpf", "load_verdict"]

_NR_BPF = 321  # x86-64
BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_MAP_FREEZE = 0, 2, 5, 22
BPF_F_RDONLY_PROG = 1 << 7
_LOG_SIZE = 1 << 22


@dataclass(frozen=True)
class RawMap:
    """A map to create for one load: type, sizes, and (array maps) value of key 0."""

    type: int = 2
    key_size: int = 4
    value_size: int = 8
    max_entries: int = 1
    value: bytes | None = None
    frozen: bool = False  # BPF_F_RDONLY_PROG and frozen after `value` is written, as .rodata


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def bpf(cmd: int, attr: bytes) -> int:
    """`bpf(cmd, attr, len(attr))`; raises OSError with the errno on failure."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _libc().syscall(_NR_BPF, cmd, buf, len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def available() -> bool:
    """Whether `bpf()` can create a map here (root, a kernel with BPF)."""
    if os.uname().machine != "x86_64":
        return False
    try:
        fd = _create(RawMap())
    except OSError:
        return False
    os.close(fd)
    return True


def _create(spec: RawMap) -> int:
    flags = BPF_F_RDONLY_PROG if spec.frozen else 0
    attr = (ctypes.c_uint32 * 5)(spec.type, spec.key_size, spec.value_size, spec.max_entries, flags)
    fd = bpf(BPF_MAP_CREATE, bytes(attr) + bytes(108))
    try:
        if spec.value is not None:
            key = ctypes.create_string_buffer(spec.key_size)
            value = ctypes.create_string_buffer(spec.value, spec.value_size)
            upd = (
                fd.to_bytes(4, "little")
                + bytes(4)
                + ctypes.addressof(key).to_bytes(8, "little")
                + ctypes.addressof(value).to_bytes(8, "little")
                + bytes(8)
            )
            bpf(BPF_MAP_UPDATE_ELEM, upd)
        if spec.frozen:
            bpf(BPF_MAP_FREEZE, fd.to_bytes(4, "little") + bytes(28))
    except OSError:
        os.close(fd)
        raise
    return fd


def load_verdict(
    insns: Sequence[Instruction],
    prog_type: int,
    *,
    maps: Sequence[RawMap] = (),
    attach_type: int = 0,
    attach_btf_id: int = 0,
    prog_flags: int = 0,
    log_level: int = 1,
    license: str = "GPL",
) -> tuple[bool, str, str]:
    """Load `insns` as a program of `prog_type`: (accepted, reason line, whole log).

    `license` is the program's license string (GPL-only helpers need a
    GPL-compatible one).

    A log of level 1 that overflows the buffer (ENOSPC: long loops log every
    instruction they process) is retried at log level 0 for the verdict,
    then only the kernel's statistics line and errno explain a rejection.
    """
    fds = [_create(m) for m in maps]
    prog_fd = -1
    try:
        patched = []
        for insn in insns:
            index = insn.imm & 0xFFFFFFFF
            if insn.opcode == 0x18 and insn.src in (1, 2) and index < len(fds):
                insn = replace(insn, imm=(insn.imm & ~0xFFFFFFFF) | fds[index])
            patched.append(insn)
        code = encode(patched)
        code_buf = ctypes.create_string_buffer(code, len(code))
        license_buf = ctypes.create_string_buffer(license.encode())
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr = bytearray(160)
        ctypes.c_uint32.from_buffer(attr, 0).value = prog_type
        ctypes.c_uint32.from_buffer(attr, 4).value = len(code) // 8
        ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(code_buf)
        ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(license_buf)
        ctypes.c_uint32.from_buffer(attr, 24).value = log_level
        if log_level:
            ctypes.c_uint32.from_buffer(attr, 28).value = _LOG_SIZE
            ctypes.c_uint64.from_buffer(attr, 32).value = ctypes.addressof(log)
        ctypes.c_uint32.from_buffer(attr, 44).value = prog_flags  # BPF_F_SLEEPABLE = 16, …
        ctypes.c_uint32.from_buffer(attr, 68).value = attach_type  # expected_attach_type
        ctypes.c_uint32.from_buffer(attr, 108).value = attach_btf_id
        try:
            prog_fd = bpf(BPF_PROG_LOAD, bytes(attr))
        except OSError as e:
            if e.errno == errno.ENOSPC and log_level:
                return load_verdict(
                    insns,
                    prog_type,
                    maps=maps,
                    attach_type=attach_type,
                    attach_btf_id=attach_btf_id,
                    prog_flags=prog_flags,
                    log_level=0,
                    license=license,
                )
            text = log.value.decode("utf-8", errors="replace")
            # a reason the kernel ends without a newline runs into its statistics line
            reason = reason_line(text).split("processed ", 1)[0]
            reason = reason or f"{os.strerror(e.errno)} (errno {e.errno})"
            return False, reason, text
        return True, "", log.value.decode("utf-8", errors="replace")
    finally:
        if prog_fd >= 0:
            os.close(prog_fd)
        for fd in fds:
            os.close(fd)

"""Formatted output: bpf_trace_printk and bpf_snprintf, formatting like the kernel.

Both go through `bprintf_prepare` (the checks of the kernel's
`bpf_bprintf_prepare`, kernel/bpf/helpers.c) and `bstr_format` (the
subset of `bstr_printf` those checks let through):

* conversions `%d %i %u %x %X` with an optional `l` or `ll` (without one
  the argument is a 32-bit int), `%c`, `%s` (and `%pks`/`%pus`), `%p`,
  `%pK`, `%px`, `%pi4 %pI4 %pi6 %pI6`, `%%`;
* flags `0 + - space` and a decimal width; no precision, no `*`, no `#`;
* the format must be printable ASCII or whitespace, NUL-terminated inside
  its size; `%s` must be followed by the end, whitespace or punctuation;
* more conversions than arguments (3 for trace_printk, `data_len / 8` up
  to 12 for snprintf) is -EINVAL.

`%s` and the IP conversions read the program's memory without faulting:
an unreadable string prints as empty and an unreadable address as zeros,
as the kernel's `*_nofault` copies do. Strings of all arguments share one
512-byte buffer (MAX_BPRINTF_BUF), so a longer one is cut there.

`%p` and `%pK` print a hash of the pointer, as the kernel does without
`no_hash_pointers` (the hash is per process, so it cannot match the
kernel's); `%px` prints the raw value in 16 hex digits.

trace_printk output: each call appends its message (the formatted string,
one trailing newline removed) to `ExecutionContext.trace` through
`emit_trace`; `trace_pipe_line` renders such a message the way trace_pipe
shows it, for the CLI.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time

from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from ..memory import Memory
from . import helper_spec

MAX_BPRINTF_BUF = 512
"""Bytes of the kernel's per-call buffer (output of trace_printk, strings of all args)."""

MAX_BPRINTF_VARARGS = 12
"""Most arguments bpf_snprintf takes."""

TRACE_PRINTK_ARGS = 3

_M64 = (1 << 64) - 1
_HASH_KEY = os.urandom(16)
_FLAGS = "0+- "


class FormatError(ValueError):
    """A format the kernel's bpf_bprintf_prepare refuses (the helper returns -EINVAL)."""


def _printable(byte: int) -> bool:
    return 0x20 <= byte < 0x7F or byte in b"\t\n\v\f\r"


def _read_string(memory: Memory, address: int, limit: int) -> bytes:
    """A NUL-terminated string at `address` (at most `limit` bytes); b"" if unreadable."""
    region = memory.find(address)
    if region is None or limit <= 0:
        return b""
    offset = address - region.start
    view = region.view[offset : offset + limit]
    data = bytes(view)
    end = data.find(b"\0")
    if end < 0:
        # The string runs past the region (a fault in the kernel) or past the limit.
        return data if len(data) == limit else b""
    return data[:end]


def _read_or_zero(memory: Memory, address: int, size: int) -> bytes:
    region = memory.find(address, size)
    if region is None:
        return bytes(size)
    return region.read(address - region.start, size)


def _pad(text: str, width: int, left: bool) -> str:
    return text.ljust(width) if left else text.rjust(width)


def _number(value: int, conv: str, bits: int, flags: str, width: int) -> str:
    value &= (1 << bits) - 1
    sign = ""
    if conv in "di":
        if value >> (bits - 1):
            value -= 1 << bits
        if value < 0:
            sign, value = "-", -value
        elif "+" in flags:
            sign = "+"
        elif " " in flags:
            sign = " "
    digits = {"x": f"{value:x}", "X": f"{value:X}"}.get(conv, str(value))
    if "0" in flags and "-" not in flags:
        return sign + digits.rjust(width - len(sign), "0")
    return _pad(sign + digits, width, "-" in flags)


def _pointer_hash(value: int) -> int:
    if not value:
        return 0
    digest = hashlib.blake2b(value.to_bytes(8, "little"), key=_HASH_KEY, digest_size=4)
    return int.from_bytes(digest.digest(), "little")


def _ip(kind: str, raw: bytes) -> str:
    if kind == "I4":
        return ".".join(str(b) for b in raw)
    if kind == "i4":
        return ".".join(f"{b:03d}" for b in raw)
    if kind == "I6":
        return ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))
    return raw.hex()


def bprintf(fmt: bytes, args: list[int], memory: Memory) -> str:
    """Format `fmt` (without its NUL) with u64 `args` as the kernel would, or raise FormatError."""
    out: list[str] = []
    n = len(fmt)
    i = 0
    spec = 0
    strings_left = MAX_BPRINTF_BUF
    while i < n:
        c = fmt[i]
        if not _printable(c):
            raise FormatError(f"byte 0x{c:02x} at {i} is not printable")
        if c != 0x25:  # '%'
            out.append(chr(c))
            i += 1
            continue
        if i + 1 < n and fmt[i + 1] == 0x25:
            out.append("%")
            i += 2
            continue
        if spec >= len(args):
            raise FormatError("more conversions than arguments")
        arg = args[spec] & _M64
        spec += 1
        i += 1
        flags = ""
        while i < n and chr(fmt[i]) in _FLAGS:
            flags += chr(fmt[i])
            i += 1
        width = 0
        while i < n and 0x30 <= fmt[i] <= 0x39:
            width = width * 10 + fmt[i] - 0x30
            i += 1
        conv = chr(fmt[i]) if i < n else "\0"
        nxt = chr(fmt[i + 1]) if i + 1 < n else "\0"
        left = "-" in flags
        if conv == "p":
            after = chr(fmt[i + 2]) if i + 2 < n else "\0"
            if nxt in "ku" and after == "s":
                i += 2
                conv = "s"
                nxt = chr(fmt[i + 1]) if i + 1 < n else "\0"
            elif nxt == "x":
                out.append(_pad(f"{arg:016x}", width, left))
                i += 2
                continue
            elif nxt in "iI" and after in "46":
                size = 4 if after == "4" else 16
                raw = _read_or_zero(memory, arg, size)
                out.append(_pad(_ip(nxt + after, raw), width, left))
                i += 3
                continue
            elif nxt in "\0KsSB" or nxt.isspace() or _punct(nxt):
                # Plain, %pK (kptr_restrict 0) and symbol forms: a hashed pointer.
                text = "(null)" if not arg else f"{_pointer_hash(arg):016x}"
                out.append(_pad(text, width, left))
                i += 2 if nxt in "KsSB" else 1
                continue
            else:
                raise FormatError(f"unsupported pointer conversion %p{nxt}")
        if conv == "s":
            if not (nxt == "\0" or nxt.isspace() or _punct(nxt)):
                raise FormatError("%s must be followed by whitespace or punctuation")
            raw = _read_string(memory, arg, strings_left)
            strings_left -= len(raw) + 1
            out.append(_pad(raw.decode("latin-1"), width, left))
            i += 1
            continue
        if conv == "c":
            out.append(_pad(chr(arg & 0xFF), width, left))
            i += 1
            continue
        bits = 32
        if conv == "l":
            bits = 64
            i += 1
            conv = chr(fmt[i]) if i < n else "\0"
            if conv == "l":
                i += 1
                conv = chr(fmt[i]) if i < n else "\0"
        if conv not in "diuxX" or conv == "\0":
            raise FormatError(f"unsupported conversion {conv!r}")
        out.append(_number(arg, conv, bits, flags, width))
        i += 1
    return "".join(out)


def _punct(char: str) -> bool:
    return len(char) == 1 and 0x21 <= ord(char) < 0x7F and not char.isalnum()


def _format_string(memory: Memory, address: int, size: int | None) -> bytes | None:
    """The format bytes before the NUL: inside `size` bytes, or up to the region's end."""
    if size is not None:
        data = memory.read(address, size)  # the verifier's guarantee: readable
        end = data.find(b"\0")
        return None if end < 0 else data[:end]
    region = memory.find(address)
    if region is None:
        raise ProgramFault(f"format string at 0x{address:x} is not in program memory")
    data = bytes(region.view[address - region.start :])
    end = data.find(b"\0")
    return None if end < 0 else data[:end]


def trace_printk(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Format fmt (r1, r2 bytes) with r3-r5 and emit it as a trace line; its length or -EINVAL."""
    fmt = _format_string(env.memory, r1, r2)
    if fmt is None:
        return -errno.EINVAL
    try:
        text = bprintf(fmt, [r3, r4, r5][:TRACE_PRINTK_ARGS], env.memory)
    except FormatError:
        return -errno.EINVAL
    encoded = text.encode("latin-1")
    shown = encoded[: MAX_BPRINTF_BUF - 1].decode("latin-1")
    if env.runtime is not None:
        env.runtime.emit_trace(shown[:-1] if shown.endswith("\n") else shown)
    return len(encoded)


def snprintf(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """bpf_snprintf(str, str_size, fmt, data, data_len): the length needed with the NUL, or -errno."""
    str_size, data_len = r2 & 0xFFFFFFFF, r5 & 0xFFFFFFFF
    if data_len % 8 or data_len > MAX_BPRINTF_VARARGS * 8 or (data_len and not r4):
        return -errno.EINVAL
    raw = env.memory.read(r4, data_len) if data_len else b""
    args = [int.from_bytes(raw[k : k + 8], "little") for k in range(0, data_len, 8)]
    fmt = _format_string(env.memory, r3, None)
    if fmt is None:
        return -errno.EINVAL
    try:
        text = bprintf(fmt, args, env.memory).encode("latin-1")
    except FormatError:
        return -errno.EINVAL
    if str_size:
        written = text[: str_size - 1] + b"\0"
        env.memory.write(r1, written)
    return len(text) + 1


def trace_pipe_line(message: str, cpu: int = 0, comm: str = "pybpf", pid: int | None = None) -> str:
    """`message` as /sys/kernel/tracing/trace_pipe shows a bpf_trace_printk event."""
    pid = os.getpid() if pid is None else pid
    stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC) / 1e9
    return f"{comm:>16}-{pid:<7} [{cpu:03d}] d..31 {stamp:12.6f}: bpf_trace_printk: {message}"


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.TRACE_PRINTK, trace_printk),
    helper_spec(HelperId.SNPRINTF, snprintf),
]
"""The helpers of this module."""

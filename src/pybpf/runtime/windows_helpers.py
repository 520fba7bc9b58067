"""The helpers only eBPF for Windows has, implemented for pybpf's runtime.

Their internal ids and prototypes are in `platform/windows_helpers.py`;
helpers Windows shares with Linux under other numbers run as Linux's
(the loader renumbers the calls). Semantics follow eBPF for Windows'
documentation of each helper:

- `bpf_memcpy_s` / `bpf_memmove_s(dst, dst_size, src, src_size)`: copy
  `src_size` bytes when they fit in `dst_size` (0), else zero `dst` and
  return -EINVAL, as C11's memcpy_s; `bpf_memset(mem, size, value)`: 0;
  `bpf_memcmp_s(a, a_size, b, b_size)`: <0, 0, >0 as memcmp over the
  shorter, then the shorter buffer is less.
- `bpf_strncpy_s(dst, dst_size, src, count)`: the string in the first
  `count` bytes of src (up to its NUL) with a NUL after it, 0; when it does
  not fit, dst becomes "" and the result is -ENOBUFS. `bpf_strncat_s`
  appends the same way after dst's string (-EINVAL when dst holds no NUL).
  `bpf_strnlen_s(str, size)`: the length up to the first NUL, or `size`.
- `bpf_ktime_get_boot_ms` / `bpf_ktime_get_ms`: CLOCK_BOOTTIME /
  CLOCK_MONOTONIC in milliseconds.
- `bpf_get_current_logon_id(ctx)`: the caller's logon session; here the
  process's uid. `bpf_is_current_admin(ctx)`: 1 for uid 0, else 0.
- `bpf_get_current_process_start_key`: a key unique to the process for its
  lifetime (its start time in clock ticks, from /proc).
  `bpf_get_current_thread_create_time`: the thread's start, in 100 ns units
  (Windows' FILETIME resolution), from the thread's CPU clock origin.
- `bpf_get_socket_cookie(ctx)`: a number that identifies the socket of the
  context for its life; here the context's address (unique per run).
- `bpf_map_lookup_and_delete_elem(map, key)`: the value's address, and the
  element deleted (its memory is not reused before the next update).
- sock_addr `bpf_sock_addr_set_redirect_context(ctx, data, size)`: keeps
  the bytes for the hook (`env.data["redirect_context"]`), 0;
  `bpf_sock_addr_get_network_context(ctx, out, size)`: a version-1 record
  of 32 bytes with zero interface and tunnel types, 0 (-EINVAL if short).
- sock_ops `bpf_sock_ops_get_flow_id(ctx)`: the connection's flow id; here
  the context's address.
- the sample extension's (`sample_ext`): `helper_function1(ctx)` 0;
  `find(buf, size, pattern, pattern_size)` the offset of the pattern's
  string in the buffer's string (strstr; pybpf bounds both by their sizes
  and answers -1 when the pattern is absent, where Windows' answer is
  undefined); `replace(buf, size, position, src, src_size)` copies src's
  string over the buffer from `position`, stopping before the buffer's
  last byte, 0 (-1 for a position outside the buffer);
  `helper_implicit_1()` the context's `helper_data_1`;
  `helper_implicit_2(arg)` `helper_data_2` + the 32-bit arg (the context
  reaches both without an argument).
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time

from ..errors import ProgramFault
from ..platform.windows import GENERAL_HELPERS, TYPE_HELPERS
from ..platform.windows_helpers import PROTOTYPES
from .helpers import HelperEnv, HelperImpl, HelperSpec

__all__ = ["HELPERS"]

_M64 = (1 << 64) - 1


def _neg(code: int) -> int:
    return -code & _M64


def _copy(env: HelperEnv, dst: int, dst_size: int, src: int, src_size: int) -> int:
    if src_size > dst_size:
        env.memory.write(dst, bytes(dst_size))
        return _neg(errno.EINVAL)
    env.memory.write(dst, env.memory.read(src, src_size))
    return 0


def memcpy_s(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r4 bytes at r3 to r1 (r2 bytes of room)."""
    return _copy(env, r1, r2, r3, r4)


def memcmp_s(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Compare r2 bytes at r1 with r4 bytes at r3."""
    a, b = env.memory.read(r1, r2), env.memory.read(r3, r4)
    return 0 if a == b else (1 if a > b else _neg(1))


def memset(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Fill r2 bytes at r1 with the low byte of r3."""
    env.memory.write(r1, bytes([r3 & 0xFF]) * r2)
    return 0


def _c_string(data: bytes) -> bytes:
    return data.split(b"\0", 1)[0]


def strncpy_s(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy the string in the first r4 bytes at r3 to r1 (r2 bytes of room)."""
    text = _c_string(env.memory.read(r3, r4))
    if len(text) >= r2:
        if r2:
            env.memory.write(r1, b"\0")
        return _neg(errno.ENOBUFS)
    env.memory.write(r1, text + b"\0")
    return 0


def strncat_s(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Append the string in the first r4 bytes at r3 to the string at r1 (r2 bytes)."""
    current = env.memory.read(r1, r2)
    end = current.find(b"\0")
    if end < 0:
        return _neg(errno.EINVAL)
    text = _c_string(env.memory.read(r3, r4))
    if end + len(text) >= r2:
        env.memory.write(r1, b"\0")
        return _neg(errno.ENOBUFS)
    env.memory.write(r1 + end, text + b"\0")
    return 0


def strnlen_s(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The length of the string at r1, at most r2."""
    return len(_c_string(env.memory.read(r1, r2)))


def ktime_get_boot_ms(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """CLOCK_BOOTTIME in milliseconds."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 1_000_000


def ktime_get_ms(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """CLOCK_MONOTONIC in milliseconds."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


def get_current_logon_id(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The caller's logon session: the process's uid here."""
    return os.getuid()


def is_current_admin(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """1 when the caller is the administrator (uid 0), else 0."""
    return int(os.geteuid() == 0)


def _process_start_ticks() -> int:
    with open("/proc/self/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return int(fields[19])  # starttime, the 22nd field of stat


def get_current_process_start_key(
    env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int
) -> int:
    """A key unique to this process: its start time in clock ticks since boot."""
    return _process_start_ticks()


def get_current_thread_create_time(
    env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int
) -> int:
    """When this thread started, in 100 ns units (FILETIME's), since the process began."""
    return (time.monotonic_ns() - time.thread_time_ns()) // 100 + threading.get_native_id() % 100


def get_socket_cookie(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """A number naming the context's socket for its life: the context's address."""
    return r1 & _M64


def map_lookup_and_delete_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The value of key r2 in map r1 (its address), the element deleted; 0 if none."""
    if env.runtime is None:
        raise ProgramFault(f"bpf_map_lookup_and_delete_elem: 0x{r1:x} is not a map pointer")
    map_ = env.runtime.map_at(r1)
    key = env.memory.read(r2, map_.spec.key_size)
    address = map_.address_of(key)
    if address is None:
        return 0
    map_.delete(key)
    return address


def set_redirect_context(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Keep r3 bytes at r2 for the sock_addr hook (the redirect context)."""
    env.data["redirect_context"] = env.memory.read(r2, r3)
    return 0


_NETWORK_CONTEXT = struct.Struct("<IIIIQI4x")  # version, interface, tunnel, pad, luid, sub


def get_network_context(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Write the version-1 network context record (32 bytes) to r2 (r3 bytes of room)."""
    if r3 < _NETWORK_CONTEXT.size:
        return _neg(errno.EINVAL)
    env.memory.write(r2, _NETWORK_CONTEXT.pack(1, 0, 0, 0, 0, 0))
    return 0


def sock_ops_get_flow_id(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The connection's flow id: the context's address."""
    return r1 & _M64


def sample_function1(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The sample extension's helper taking the context: 0."""
    return 0


def sample_find(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Where the string in the r4 bytes at r3 starts in the string in the r2 bytes at r1."""
    found = _c_string(env.memory.read(r1, r2)).find(_c_string(env.memory.read(r3, r4)))
    return found & _M64


def sample_replace(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy the string in the r5 bytes at r4 over the r2 bytes at r1 from offset r3."""
    position = r3 - (1 << 64) if r3 >> 63 else r3
    if position < 0 or position >= r2:
        return _neg(1)
    room = max(r2 - 1 - position, 0)  # the copy stops before the buffer's last byte
    text = _c_string(env.memory.read(r4, r5))[:room]
    env.memory.write(r1 + position, text)
    return 0


_SAMPLE_HELPER_DATA = struct.Struct("<II")  # helper_data_1, helper_data_2 at offset 24


def sample_implicit_1(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The context's helper_data_1."""
    return _SAMPLE_HELPER_DATA.unpack(env.memory.read(env.ctx + 24, 8))[0]


def sample_implicit_2(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The context's helper_data_2 plus the 32-bit r1."""
    return _SAMPLE_HELPER_DATA.unpack(env.memory.read(env.ctx + 24, 8))[1] + (r1 & 0xFFFF_FFFF)


_IMPLS: dict[str, HelperImpl] = {
    "bpf_map_lookup_and_delete_elem": map_lookup_and_delete_elem,
    "bpf_get_current_logon_id": get_current_logon_id,
    "bpf_is_current_admin": is_current_admin,
    "bpf_memcpy_s": memcpy_s,
    "bpf_memcmp_s": memcmp_s,
    "bpf_memset": memset,
    "bpf_memmove_s": memcpy_s,  # copying through bytes: overlap is safe
    "bpf_get_socket_cookie": get_socket_cookie,
    "bpf_strncpy_s": strncpy_s,
    "bpf_strncat_s": strncat_s,
    "bpf_strnlen_s": strnlen_s,
    "bpf_ktime_get_boot_ms": ktime_get_boot_ms,
    "bpf_ktime_get_ms": ktime_get_ms,
    "bpf_get_current_process_start_key": get_current_process_start_key,
    "bpf_get_current_thread_create_time": get_current_thread_create_time,
    "bpf_sock_addr_set_redirect_context": set_redirect_context,
    "bpf_sock_addr_get_network_context": get_network_context,
    "bpf_sock_ops_get_flow_id": sock_ops_get_flow_id,
    "sample_ebpf_extension_helper_function1": sample_function1,
    "sample_ebpf_extension_find": sample_find,
    "sample_ebpf_extension_replace": sample_replace,
    "sample_ebpf_extension_helper_implicit_1": sample_implicit_1,
    "sample_ebpf_extension_helper_implicit_2": sample_implicit_2,
}

_ALL = list(GENERAL_HELPERS.values()) + [h for t in TYPE_HELPERS.values() for h in t.values()]

HELPERS: list[HelperSpec] = [
    HelperSpec(h.internal, h.name, _IMPLS[h.name], PROTOTYPES[h.internal])
    for h in _ALL
    if h.internal in PROTOTYPES
]
"""Every helper only eBPF for Windows has, at its internal id."""

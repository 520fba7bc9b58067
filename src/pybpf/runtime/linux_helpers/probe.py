"""bpf_probe_read_{kernel,user}[_str] and the legacy bpf_probe_read[_str].

A probe read copies from any address without faulting: in pybpf the
readable memory is every live region (the stack, maps, the context, the
synthetic `task_struct`, regions a test adds with
`ExecutionContext.add_memory`). A source outside one region fails as an
unmapped address does in the kernel: -EFAULT with the destination zeroed.
pybpf has one address space, so kernel and user reads (and the legacy
helpers, which on x86 try both) behave alike.

String reads follow `strncpy_from_{kernel,user}_nofault`: bytes up to and
including the first NUL, at most `size`; without a NUL in that range the
last copied byte becomes NUL. The result is the number of bytes copied,
NUL included, and 0 for size 0.
"""

from __future__ import annotations

import errno

from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec

_M32 = 0xFFFFFFFF


def probe_read(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r2 bytes from the unsafe address r3 to r1: 0, or -EFAULT (r1 zeroed)."""
    size = r2 & _M32
    env.memory.check(r1, size, write=True)
    if size == 0:
        return 0
    region = env.memory.find(r3, size)
    if region is None:
        env.memory.write(r1, bytes(size))
        return -errno.EFAULT
    env.memory.write(r1, region.read(r3 - region.start, size))
    return 0


def probe_read_str(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy a NUL-terminated string (at most r2 bytes) from r3 to r1: its length with NUL."""
    size = r2 & _M32
    env.memory.check(r1, size, write=True)
    if size == 0:
        return 0
    region = env.memory.find(r3)
    if region is None:
        env.memory.write(r1, bytes(size))
        return -errno.EFAULT
    data = region.read(r3 - region.start, min(size, region.end - r3))
    end = data.find(b"\0")
    if end >= 0:
        data = data[: end + 1]
    elif len(data) < size:  # the string runs off mapped memory
        env.memory.write(r1, bytes(size))
        return -errno.EFAULT
    else:
        data = data[:-1] + b"\0"
    env.memory.write(r1, data)
    return len(data)


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.PROBE_READ, probe_read),
    helper_spec(HelperId.PROBE_READ_KERNEL, probe_read),
    helper_spec(HelperId.PROBE_READ_USER, probe_read),
    helper_spec(HelperId.PROBE_READ_STR, probe_read_str),
    helper_spec(HelperId.PROBE_READ_KERNEL_STR, probe_read_str),
    helper_spec(HelperId.PROBE_READ_USER_STR, probe_read_str),
]
"""The helpers of this module."""

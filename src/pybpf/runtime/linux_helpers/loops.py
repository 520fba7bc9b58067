"""Helpers that call back into the program: bpf_loop and bpf_for_each_map_elem.

The callback is a subprogram whose address the program loaded with
`lddw rX, <func>` (src=BPF_PSEUDO_FUNC); engines turn that value back into
the subprogram with `engine.call_function(token, r1, …, r5, env=env)`,
which runs it in a fresh frame below the caller's (so it counts against
the call depth limit, as in Linux) and returns its r0. A callback
returning non-zero stops the iteration (the verifier of Linux only lets
it return 0 or 1).

bpf_for_each_map_elem walks the keys present when it starts, in
get_next_key order (array: every index; hash: each key); an element the
callback deletes before it is reached is skipped. The key pointer it gets
points to a read-only copy of the key, as the kernel's array callback gets
a pointer to a stack copy of the index; the value pointer is the element's
own value (this CPU's for per-CPU maps), so writes go to the map.
"""

from __future__ import annotations

import errno
from typing import Any

from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec
from .maps import _LOOKUP, map_of, native_function

BPF_MAX_LOOPS = 1 << 23
"""Most iterations bpf_loop accepts (kernel BPF_MAX_LOOPS)."""

_M32 = 0xFFFFFFFF


def _caller(env: HelperEnv) -> Any:
    call = getattr(env.engine, "call_function", None)
    if call is None:
        raise ProgramFault("this engine cannot call back into the program")
    return call


def loop(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """bpf_loop(nr_loops, callback, ctx, flags): callback(i, ctx) until it returns 1."""
    if r4:
        return -errno.EINVAL
    count = r1 & _M32
    if count > BPF_MAX_LOOPS:
        return -errno.E2BIG
    call = _caller(env)
    for index in range(count):
        if call(r2, index, r3, 0, 0, 0, env=env):
            return index + 1
    return count


def for_each_map_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """bpf_for_each_map_elem(map, callback, ctx, flags): callback(map, key, value, ctx) per element."""
    if r4:
        return -errno.EINVAL
    map_ = map_of(env, r1)
    lookup_address = getattr(map_.native, "lookup", 0)
    if not lookup_address:
        return -errno.EINVAL
    call = _caller(env)
    lookup = native_function(lookup_address, _LOOKUP)
    cpu = env.cpu if getattr(map_, "percpu", False) else 0
    keys = list(map_)
    scratch = env.memory.allocate(map_.spec.key_size, f"for_each key of {map_.name}", False)
    visited = 0
    try:
        for key in keys:
            scratch.write(0, key)
            value = lookup(map_.address, scratch.start, cpu)
            if not value:
                continue  # deleted by an earlier callback
            visited += 1
            if call(r2, map_.address, scratch.start, value, r3, 0, env=env):
                break
    finally:
        env.memory.remove(scratch)
    return visited


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.LOOP, loop),
    helper_spec(HelperId.FOR_EACH_MAP_ELEM, for_each_map_elem),
]
"""The helpers of this module."""

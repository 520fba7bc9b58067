"""Map helpers: lookup, update, delete, push, pop, peek, and tail_call through a prog_array.

Each helper finds the map by the pointer the program passes
(`ExecutionContext.map_at`), checks that the key or value it points to is
readable (or writable) program memory, then calls the map family's native
function (`Map.native`) with that address, the same function a JIT calls,
so the program's view and the Python API's never differ. Results are what
the kernel returns: a value address or 0 for lookup, 0 or a negative errno
for the others. Per-CPU maps use the running program's CPU (`env.cpu`).

Queue, stack and bloom-filter maps export `push(map, value, flags)`,
`pop(map, value_out)` and `peek(map, value_out)` in `Map.native` (0 or
-errno, like the kernel's `map_push_elem` / `map_pop_elem` /
`map_peek_elem`; zero for families without them, which give -EINVAL as
the kernel's defaults do). For bloom filters push adds and peek tests.
"""

from __future__ import annotations

import ctypes
import errno
from typing import Any

from ...elf.map_types import MapType
from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from ..native.calls import native_caller
from . import helper_spec

_M32 = 0xFFFFFFFF

_LOOKUP = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int64)
_UPDATE = ctypes.CFUNCTYPE(
    ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
    ctypes.c_int64,
)  # fmt: skip
_DELETE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64)
_PUSH = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)
_POP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64)

_callables: dict[tuple[int, Any], Any] = {}


def native_function(address: int, prototype: Any) -> Any:
    """A callable for the native function at `address` with ctypes `prototype` (cached).

    A `native.calls` builtin where the C API allows (a few tens of ns per
    call), the ctypes callable otherwise; both take ints and return the
    prototype's result type.
    """
    key = (address, prototype)
    function = _callables.get(key)
    if function is None:
        signed = prototype._restype_ is ctypes.c_int64
        function = native_caller(address, len(prototype._argtypes_), signed=signed)
        _callables[key] = function
    return function


class _LookupBinding:
    """A map's lookup bound to its map pointer, as the lookup helper calls it.

    Kept on the map (`_helper_lookup`) and valid while the map's `native`
    operations are the ones it was made from (a map bound anew gets new ones).
    """

    __slots__ = ("native", "lookup", "key_size", "percpu", "key_region")

    def __init__(self, map_: Any):
        self.native = map_.native
        address = getattr(self.native, "lookup", 0)
        self.lookup = (
            native_caller(address, 2, signed=False, first=map_.address) if address else None
        )
        self.key_size = map_.spec.key_size
        self.percpu = bool(getattr(map_, "percpu", False))
        #: The region the last key was found in: (memory, its generation then, the
        #: lowest and highest key address inside it), one tuple so that threads
        #: never see half of an update. Valid while no region has been removed.
        self.key_region: tuple[Any, int, int, int] = (None, -1, 0, -1)

    def check_key(self, memory: Any, address: int) -> None:
        """Raise the fault `Memory.check` raises unless the key at `address` is readable."""
        size = self.key_size
        generation = memory.generation  # before the look-up: a removal after it shows
        region = memory.find(address, size)
        if region is None:
            memory.check(address, size)  # raises the fault
        self.key_region = (memory, generation, region.start, region.end - size)


def map_of(env: HelperEnv, pointer: int) -> Any:
    """The live map a program's map pointer names (ProgramFault if none)."""
    if env.runtime is None:
        raise ProgramFault(f"0x{pointer:x} is not a map pointer (no execution context)")
    return env.runtime.map_at(pointer)


def _cpu(env: HelperEnv, map_: Any) -> int:
    return env.cpu if getattr(map_, "percpu", False) else 0


def map_lookup_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The address of the value of key *r2 in map r1 (this CPU's for per-CPU maps), or 0."""
    # The most frequent helper: the steps of `map_of` inlined, the key's
    # region remembered from the last call (re-checked whenever a region
    # went away since), and the lookup bound to the map once
    # (`_LookupBinding`), a native builtin call.
    runtime = env.runtime
    if runtime is None:
        return map_of(env, r1)  # raises
    map_ = runtime.map_at(r1)
    bound = getattr(map_, "_helper_lookup", None)
    if bound is None or bound.native is not map_.native:
        bound = map_._helper_lookup = _LookupBinding(map_)
    lookup = bound.lookup
    if lookup is None:
        return 0
    memory = env.memory
    known = bound.key_region
    if known[0] is not memory or known[1] != memory.generation or not known[2] <= r2 <= known[3]:
        bound.check_key(memory, r2)
    return lookup(r2, env.cpu if bound.percpu else 0)


def cached_lookup(runtime: Any, memory: Any, pointer: int) -> tuple[int, int, Any] | None:
    """What an engine may cache to repeat `map_lookup_elem` on map `pointer`, or None.

    Asked right after a call of the helper that succeeded: (the start of
    the region the key was found in, the highest key offset from it, the
    lookup bound to the map, called as `lookup(key, 0)`). A later call of
    the same map with a key inside that range gives what the helper would,
    as long as `memory.generation` has not moved since (a region removed,
    the map gone from `runtime`: `ExecutionContext.remove_map` bumps it).
    None for a per-CPU map (its CPU comes from the run), a map without a
    lookup, or a key region another change has already made stale.
    """
    try:
        map_ = runtime.map_at(pointer)
    except ProgramFault:  # gone since the call
        return None
    bound = getattr(map_, "_helper_lookup", None)
    if bound is None or bound.native is not map_.native or bound.lookup is None or bound.percpu:
        return None
    known, generation, lowest, highest = bound.key_region
    if known is not memory or generation != memory.generation:
        return None
    return lowest, highest - lowest, bound.lookup


def map_update_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Set key *r2 to value *r3 with flags r4: 0 or -errno (EEXIST, ENOENT, E2BIG, EINVAL …)."""
    map_ = map_of(env, r1)
    update = getattr(map_.native, "update", 0)
    if not update:
        return -errno.EINVAL
    env.memory.check(r2, map_.spec.key_size)
    env.memory.check(r3, map_.spec.value_size)
    return native_function(update, _UPDATE)(map_.address, r2, r3, r4, _cpu(env, map_))


def map_delete_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Remove key *r2 from map r1: 0 or -errno (ENOENT; EINVAL for arrays)."""
    map_ = map_of(env, r1)
    delete = getattr(map_.native, "delete", 0)
    if not delete:
        return -errno.EINVAL
    env.memory.check(r2, map_.spec.key_size)
    return native_function(delete, _DELETE)(map_.address, r2)


def map_push_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Push value *r2 with flags r3 (BPF_EXIST overwrites the oldest): 0 or -errno."""
    map_ = map_of(env, r1)
    push = getattr(map_.native, "push", 0)
    if not push:
        return -errno.EINVAL
    env.memory.check(r2, map_.spec.value_size)
    return native_function(push, _PUSH)(map_.address, r2, r3)


def _take(env: HelperEnv, r1: int, r2: int, operation: str) -> int:
    map_ = map_of(env, r1)
    function = getattr(map_.native, operation, 0)
    if not function:
        return -errno.EINVAL
    # A bloom filter's peek tests the value *r2 instead of filling it.
    write = map_.spec.type != MapType.BLOOM_FILTER
    env.memory.check(r2, map_.spec.value_size, write=write)
    return native_function(function, _POP)(map_.address, r2)


def map_pop_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Remove the next element into *r2: 0 or -ENOENT when empty."""
    return _take(env, r1, r2, "pop")


def map_peek_elem(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy the next element into *r2 without removing it: 0 or -ENOENT."""
    return _take(env, r1, r2, "peek")


def tail_call(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Jump to program r3 of prog_array r2 with context r1; on failure go on.

    Linux gives no result for a failed tail call (the program simply goes
    on); pybpf returns -E2BIG for an index past max_entries, -ENOENT for an
    empty slot, -ELOOP past 33 chained calls and -EINVAL for a map that is
    not a prog_array.
    """
    map_ = map_of(env, r2)
    target_of = getattr(map_, "tail_call_target", None)
    if target_of is None:
        return -errno.EINVAL
    index = r3 & _M32
    if index >= map_.spec.max_entries:
        return -errno.E2BIG
    program = target_of(index)
    if program is None:
        return -errno.ENOENT
    env.tail_call(getattr(program, "engine", program))  # does not return when it succeeds
    return -errno.ELOOP


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.MAP_LOOKUP_ELEM, map_lookup_elem),
    helper_spec(HelperId.MAP_UPDATE_ELEM, map_update_elem),
    helper_spec(HelperId.MAP_DELETE_ELEM, map_delete_elem),
    helper_spec(HelperId.MAP_PUSH_ELEM, map_push_elem),
    helper_spec(HelperId.MAP_POP_ELEM, map_pop_elem),
    helper_spec(HelperId.MAP_PEEK_ELEM, map_peek_elem),
    helper_spec(HelperId.TAIL_CALL, tail_call),
]
"""The helpers of this module."""

"""BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY, native code and Python class.

Semantics follow kernel/bpf/arraymap.c: keys are u32 indices below
`max_entries`, every element always exists (zero-filled at creation),
updates with BPF_NOEXIST fail with EEXIST, an index out of range with
E2BIG, deletes with EINVAL; get_next_key of NULL or of an index out of
range gives 0, of the last index ENOENT. Elements are
`round_up(value_size, 8)` bytes apart, as in the kernel.
"""

from __future__ import annotations

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native.irblocks import (
    I32,
    I64,
    branch,
    define,
    errno,
    i32,
    i64,
    load,
    load_field,
    return_if,
    store,
)
from .base import Map, MapError, PerCpuValues
from .header import BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, MapHeader
from .header_ir import (
    check_cpu,
    check_update_flags,
    copy_value,
    cpu_slot,
    families_native,
    map_lock,
    value_block,
)

ARRAY_PREFIX = "pybpf_array_"
PERCPU_ARRAY_PREFIX = "pybpf_percpu_array_"


def _check_index(b: ir.IRBuilder, header: ir.Value, key: ir.Value, failure: ir.Value) -> ir.Value:
    """The u32 index at `key`; returns `failure` when it is not below max_entries."""
    index = load(b, key, I32)
    max_entries = load_field(b, MapHeader, header, "max_entries")
    return_if(b, b.icmp_unsigned(">=", index, max_entries), failure, "outside")
    return index


def _build_family(module: ir.Module, prefix: str, percpu: bool) -> None:
    # lookup(map, key, cpu) -> value address or 0. No lock: elements never
    # move, and a reader racing an update may see a torn value, as in Linux.
    function, b = define(module, f"{prefix}lookup", I64, [I64, I64, I64])
    header, key, cpu = function.args
    index = _check_index(b, header, key, i64(0))
    block = value_block(b, header, index)
    if percpu:
        check_cpu(b, header, cpu, i64(0))
        block = cpu_slot(b, header, block, cpu)
    b.ret(block)

    # update(map, key, value, flags, cpu) -> 0 / -errno. Taken under the map
    # lock so that two updaters never interleave their copies (Linux only
    # guarantees that with BPF_F_LOCK; being stricter is not observable).
    function, b = define(module, f"{prefix}update", I64, [I64, I64, I64, I64, I64])
    header, key, value, flags, cpu = function.args
    check_update_flags(b, function, flags)
    index = _check_index(b, header, key, errno(E2BIG))
    return_if(b, b.icmp_unsigned("==", flags, i64(BPF_NOEXIST)), errno(EEXIST), "exists")
    if percpu:
        check_cpu(b, header, cpu, errno(EINVAL))
    with map_lock(b, header):
        copy_value(b, header, value_block(b, header, index), value, cpu, percpu)
    b.ret(i64(0))

    # delete(map, key): array elements cannot be deleted.
    function, b = define(module, f"{prefix}delete", I64, [I64, I64])
    b.ret(errno(EINVAL))

    # get_next_key(map, key, next): indices in order; NULL or out of range → 0.
    function, b = define(module, f"{prefix}get_next_key", I64, [I64, I64, I64])
    header, key, out = function.args
    given = function.append_basic_block("given")
    resolved = function.append_basic_block("resolved")
    start = b.block
    b.cbranch(b.icmp_unsigned("==", key, i64(0)), resolved, given)
    b.position_at_end(given)
    loaded = load(b, key, I32)
    b.branch(resolved)
    b.position_at_end(resolved)
    index = b.phi(I32)
    index.add_incoming(i32(0xFFFFFFFF), start)
    index.add_incoming(loaded, given)
    max_entries = load_field(b, MapHeader, header, "max_entries")
    restart, inside = branch(b, b.icmp_unsigned(">=", index, max_entries), "restart")
    b.position_at_end(restart)
    store(b, i32(0), out)
    b.ret(i64(0))
    b.position_at_end(inside)
    last = b.icmp_unsigned("==", index, b.sub(max_entries, i32(1)))
    return_if(b, last, errno(ENOENT), "last")
    store(b, b.add(index, i32(1)), out)
    b.ret(i64(0))


def build_array_module(module: ir.Module) -> None:
    """Add the array and per-CPU array operations to `module`."""
    _build_family(module, ARRAY_PREFIX, percpu=False)
    _build_family(module, PERCPU_ARRAY_PREFIX, percpu=True)


ARRAY_NATIVE = families_native(
    "array", build_array_module, [(ARRAY_PREFIX, False), (PERCPU_ARRAY_PREFIX, True)]
)
"""Native code of both array families, compiled on first use."""


class ArrayMap(Map):
    """BPF_MAP_TYPE_ARRAY: `max_entries` zero-filled values indexed by a u32 key."""

    lockless_reads = True

    module = ARRAY_NATIVE
    prefix = ARRAY_PREFIX

    def check_spec(self, spec: MapSpec) -> None:
        """The kernel wants 4-byte keys and non-zero value size and entries."""
        super().check_spec(spec)
        if spec.key_size != 4:
            raise MapError(EINVAL, "create", spec.name, "array keys must be 4 bytes")

    def __len__(self) -> int:
        return self.spec.max_entries


class PerCpuArrayMap(PerCpuValues, ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY: an array holding one value per simulated CPU."""

    prefix = PERCPU_ARRAY_PREFIX
